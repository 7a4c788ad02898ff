"""The per-connection name cache (trackli.names): a sweep writes only what changed and drops what is no
longer needed; a poll adds; known() answers from the cache only. On both databases."""

from sqlalchemy import event, func, select

from trackli import connections, names
from trackli.atlassian.models import ContentInfo, Enrichment, SpaceInfo
from trackli.models import ContentName, utcnow
from trackli.simulator import ME, ME_API_TOKEN


def found(*pages, spaces=()):
    return Enrichment(pages={p.id: p for p in pages}, spaces={s.id: s for s in spaces})


def page(i, title=None, space="9"):
    return ContentInfo(id=str(i), title=title or f"Page {i}", space_id=space, status="current", webui=f"/p/{i}")


def test_a_sweep_writes_only_what_changed_and_drops_what_is_gone(sim_ctx, user_id, sim, migrated_engine):
    conn = connections.connect_api_token(sim_ctx, user_id, sim.url, ME[1], ME_API_TOKEN)
    space = SpaceInfo(id="9", key="ENG", name="Engineering")
    with sim_ctx.session() as s:
        names.replace(s, conn, found(page(1), page(2), spaces=[space]), utcnow())
    writes = []
    listen = lambda c, cur, stmt, *a: writes.append(stmt) if stmt.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")) else None  # noqa: E731
    event.listen(migrated_engine, "before_cursor_execute", listen)
    try:
        with sim_ctx.session() as s:  # the same names again: nothing written
            names.replace(s, conn, found(page(1), page(2), spaces=[space]), utcnow())
        assert [w for w in writes if "content_names" in w] == []
        with sim_ctx.session() as s:  # one renamed, one gone
            names.replace(s, conn, found(page(1, "Renamed"), spaces=[space]), utcnow())
    finally:
        event.remove(migrated_engine, "before_cursor_execute", listen)
    with sim_ctx.session() as s:
        cached = names.known(s, conn, {"pages": ["1", "2", "3"], "spaces": ["9"]})
        assert {k: v.title for k, v in cached.pages.items()} == {"1": "Renamed"}  # 2 dropped, 3 never cached
        assert cached.spaces["9"].key == "ENG"
        names.add(s, conn, found(page(3)), utcnow())  # a poll's new look-up
        assert set(names.known(s, conn, {"pages": ["3"]}).pages) == {"3"}
        assert s.scalar(select(func.count()).select_from(ContentName)) == 3
