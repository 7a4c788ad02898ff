"""A person's projects: names unique per person in any case, a colour, archived or not."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from trackli.errors import NotFound, ValidationError
from trackli.fields import clean_title
from trackli.models import Project

MAX_PROJECT_NAME = 100
COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


def get_project(session: Session, user_id: int, project_id: int) -> Project:
    project = session.get(Project, project_id)
    if project is None or project.owner_id != user_id:
        raise NotFound(f"project {project_id} not found")
    return project


def project_by_name(session: Session, user_id: int, name: str) -> Project:
    """The person's project of that name, in any case ("ops" finds "Ops")."""
    project = session.scalar(select(Project).where(
        Project.owner_id == user_id, func.lower(Project.name) == name.strip().lower()).order_by(Project.id).limit(1))
    if project is None:
        raise NotFound(f"project {name!r} not found")
    return project


def _project_name(session: Session, user_id: int, name: str, exclude_id: int | None = None) -> str:
    name = clean_title(name, "project name")
    if len(name) > MAX_PROJECT_NAME:
        raise ValidationError(f"a project name is at most {MAX_PROJECT_NAME} characters")
    clash = select(Project.id).where(Project.owner_id == user_id, func.lower(Project.name) == name.lower())
    if exclude_id is not None:
        clash = clash.where(Project.id != exclude_id)
    if session.scalar(clash) is not None:
        raise ValidationError(f"you already have a project named {name!r}")
    return name


# Distinct at a glance on a light or a dark board, and for the common kinds of colour blindness.
PALETTE = ("#4C6EF5", "#E8590C", "#2F9E44", "#AE3EC9", "#1098AD", "#E03131", "#F59F00", "#5C7CFA", "#0CA678",
           "#D6336C", "#74B816", "#7048E8")


def next_colour(session: Session, user_id: int) -> str:
    """The first colour of the palette none of the person's projects has (then the least used)."""
    used = [c.upper() for c in session.scalars(select(Project.colour).where(Project.owner_id == user_id))]
    return min(PALETTE, key=lambda c: (used.count(c.upper()), PALETTE.index(c)))


def create_project(session: Session, user_id: int, name: str, colour: str | None = None) -> Project:
    """A new project; without a colour, the next one of the palette (new projects look different)."""
    colour = colour or next_colour(session, user_id)
    if not COLOUR.match(colour):
        raise ValidationError(f"{colour!r} is not a colour: use #RRGGBB")
    project = Project(owner_id=user_id, name=_project_name(session, user_id, name), colour=colour)
    session.add(project)
    session.flush()
    return project


def rename_project(session: Session, user_id: int, project_id: int, name: str) -> Project:
    project = get_project(session, user_id, project_id)
    project.name = _project_name(session, user_id, name, exclude_id=project_id)
    return project


def recolour_project(session: Session, user_id: int, project_id: int, colour: str) -> Project:
    if not COLOUR.match(colour or ""):
        raise ValidationError(f"{colour!r} is not a colour: use #RRGGBB")
    project = get_project(session, user_id, project_id)
    project.colour = colour
    return project


def archive_project(session: Session, user_id: int, project_id: int, archived: bool = True) -> Project:
    project = get_project(session, user_id, project_id)
    project.archived = archived
    return project


def list_projects(session: Session, user_id: int, include_archived: bool = False) -> list[Project]:
    stmt = select(Project).where(Project.owner_id == user_id)
    if not include_archived:
        stmt = stmt.where(Project.archived.is_(False))
    return list(session.scalars(stmt.order_by(Project.name)))


def resolve_project(session: Session, user_id: int, project: int | str | None, *, create: bool = False) -> int | None:
    """A project id of the user's from an id or a name (any case); None stays None. With `create`, a
    name that matches none of the person's projects makes a new one."""
    if project is None or (isinstance(project, str) and not project.strip()):
        return None
    if isinstance(project, int) or (isinstance(project, str) and project.isdigit()):
        return get_project(session, user_id, int(project)).id
    try:
        return project_by_name(session, user_id, str(project)).id
    except NotFound:
        if not create:
            raise
        return create_project(session, user_id, str(project)).id
