"""Connect: link Trackli to your Atlassian site (OAuth 2.0 or an API token), and see each connection."""

import datetime as dt
import json
import secrets
from urllib.parse import urlsplit

import streamlit as st

from trackli import connections, sync
from trackli.ui import setup, widgets

pc = setup.page("Connect", ":material/link:")
ctx, uid = pc.ctx, pc.user_id
settings = ctx.settings
widgets.flash()


OAUTH_COOKIE = "trackli_oauth"  # binds a sign-in to the browser that started it


def go_to_atlassian() -> None:
    """Start the OAuth flow in this tab, bound to this browser by a short-lived cookie."""
    browser = secrets.token_urlsafe(24)
    ok, url = widgets.act(lambda: connections.start_oauth(ctx, uid, browser=browser))
    if not ok or not url:
        return
    cookie = f"{OAUTH_COOKIE}={browser}; path=/; max-age=600; samesite=lax"
    # Links and link buttons would open a new tab: a script sends this one.
    st.html(f"<script>document.cookie = {json.dumps(cookie)}; window.location.assign({json.dumps(url)})</script>",
            unsafe_allow_javascript=True)
    st.markdown(f"Opening Atlassian… if nothing happens, [continue to Atlassian]({url}).")


# -- the OAuth callback lands here -----------------------------------------------------------------
params = st.query_params.to_dict()
if "code" in params or "error" in params:
    st.query_params.clear()  # the code must not stay in the address bar
    if "error" in params:
        st.error(f"Atlassian did not grant access ({widgets.literal(params['error'][:200])}). You can try again below.")
    else:
        browser = st.context.cookies.get(OAUTH_COOKIE)
        ok, outcome = widgets.act(lambda: connections.finish_oauth(ctx, uid, params.get("state", ""), params.get("code", ""),
                                                                   browser=browser))
        if ok and outcome:
            if outcome.status == "connected":
                with ctx.session() as session:
                    lacking = connections.describe(connections.get_connection(session, uid, outcome.connection_id or 0))
                if lacking["missing_scopes"]:
                    st.warning(f"Connected, but Atlassian did not grant {', '.join(lacking['missing_scopes'])}: Trackli "
                               "cannot do everything yet. Diagnostics says how to fix it.", icon=":material/warning:")
                else:
                    st.success("Connected to Atlassian. Your tasks will appear on the Pending page after a sync.",
                               icon=":material/check_circle:")
            elif outcome.status == "already_connected":
                st.info("This sign-in was already completed: you are connected.")
            else:
                st.session_state["site_choice"] = (params["state"], outcome.sites)

if "site_choice" in st.session_state:
    state, sites = st.session_state["site_choice"]
    st.subheader("Choose a site")
    names = {s.cloud_id: f"{s.name} ({s.url})" for s in sites}
    chosen = st.radio("Your Atlassian account reaches several sites; which one should Trackli use?",
                      list(names), format_func=names.get, key="site_pick")
    if st.button("Use this site", type="primary"):
        if widgets.act(lambda: connections.choose_site(ctx, uid, state, chosen,
                                                      browser=st.context.cookies.get(OAUTH_COOKIE)))[0]:
            del st.session_state["site_choice"]
            widgets.flash("Connected to Atlassian.")
            st.rerun()

# -- new connections -------------------------------------------------------------------------------
oauth_col, token_col = st.columns(2)
with oauth_col:
    st.subheader("Atlassian account (OAuth 2.0)")
    missing = settings.missing_oauth_settings()
    if missing:
        here = urlsplit(st.context.url or "http://localhost:8501/connect")
        callback = f"{here.scheme}://{here.netloc}/connect"  # this server's own address, as the browser sees it
        st.warning(
            "OAuth is not configured yet. Set " + ", ".join(f"`{m}`" for m in missing) +
            " in the environment or in `.streamlit/secrets.toml`, using your app's values from Atlassian's "
            f"developer console. Its callback URL, and `ATLASSIAN_REDIRECT_URI`, must be this page: `{callback}`. "
            "Or connect with an API token instead.", icon=":material/settings:")
    else:
        st.write("Sign in at Atlassian and grant Trackli access to your Confluence tasks.")
        if st.button("Connect Atlassian", type="primary", icon=":material/login:"):
            go_to_atlassian()

with token_col:
    st.subheader("API token")
    with st.form("api_token", clear_on_submit=False):
        site = st.text_input("Site URL", placeholder="https://your-site.atlassian.net")
        email = st.text_input("Email of your Atlassian account")
        token = st.text_input("API token", type="password",
                              help="Create one at id.atlassian.com → Security → API tokens")
        if st.form_submit_button("Connect with token", icon=":material/key:"):
            if widgets.act(lambda: connections.connect_api_token(ctx, uid, site, email, token))[0]:
                widgets.flash("Connected with the API token.")
                st.rerun()

# -- existing connections --------------------------------------------------------------------------
st.divider()
st.subheader("Your connections")
with ctx.session() as session:
    conns = [connections.describe(c) for c in connections.list_connections(session, uid)]
    last = {c["id"]: (sync.last_runs(session, uid, c["id"], limit=1) or [None])[0] for c in conns}
if not conns:
    st.info("None yet.")
for conn in conns:
    with st.container(border=True):
        head, actions = st.columns([4, 1])
        status_badge = widgets.CONNECTION_BADGES[conn["status"]]
        head.markdown(f"**{widgets.literal(conn['site_name'] or conn['site_url'])}** {status_badge}")
        run = last[conn["id"]]
        head.markdown(
            f"{'OAuth 2.0' if conn['kind'] == 'oauth' else 'API token'} · account `{conn['account_email'] or conn['account_id']}`"
            f" · {widgets.literal(conn['site_url'])}\n\n"
            + (f"Token expires {widgets.when(dt.datetime.fromisoformat(conn['token_expires_at']))} · "
               if conn["token_expires_at"] and conn["status"] == "ok" else "")
            + (f"last sync {widgets.when(run.started_at)} ({run.outcome})" if run else "never synced"))
        if conn["kind"] == "oauth":
            head.caption("Granted scopes: " + (" ".join(conn["scopes"]) or "(none)"))
            if conn["missing_scopes"]:
                head.error(f"Missing scopes: {', '.join(conn['missing_scopes'])} — see Diagnostics for the fix.")
        if conn["last_error"]:
            head.warning(widgets.literal(conn["last_error"]))
        if conn["has_token"] and actions.button("Disconnect", key=f"disconnect_{conn['id']}", icon=":material/link_off:"):
            widgets.act(lambda: connections.disconnect(ctx, uid, conn["id"]), later=True,
                        done="Disconnected. The queue, cards and unsent completions are kept for when you reconnect.")
            st.rerun()
        if conn["kind"] == "oauth" and not missing:
            if actions.button("Reconnect", key=f"reconnect_{conn['id']}", icon=":material/sync_lock:"):
                go_to_atlassian()
        elif conn["kind"] == "api_token" and conn["status"] != "ok":
            actions.caption("Enter a new token in the API token form to reconnect.")
