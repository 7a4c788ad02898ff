"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-27
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_sync_request_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email'))
    )
    op.create_table('atlassian_connections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('site_url', sa.String(length=500), nullable=False),
    sa.Column('cloud_id', sa.String(length=100), nullable=True),
    sa.Column('site_name', sa.String(length=200), nullable=True),
    sa.Column('account_id', sa.String(length=128), nullable=True),
    sa.Column('account_email', sa.String(length=320), nullable=True),
    sa.Column('account_name', sa.String(length=200), nullable=True),
    sa.Column('access_token_enc', sa.Text(), nullable=True),
    sa.Column('refresh_token_enc', sa.Text(), nullable=True),
    sa.Column('token_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('scopes', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('oauth', 'api_token')", name=op.f('ck_atlassian_connections_kind')),
    sa.CheckConstraint("status IN ('ok', 'needs_reconnect', 'error')", name=op.f('ck_atlassian_connections_status')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_atlassian_connections_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_atlassian_connections'))
    )
    with op.batch_alter_table('atlassian_connections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_atlassian_connections_user_id'), ['user_id'], unique=False)

    op.create_table('integration_audit_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('provider', sa.String(length=40), nullable=False),
    sa.Column('event_type', sa.String(length=80), nullable=False),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('success', sa.Boolean(), nullable=False),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_integration_audit_log_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_integration_audit_log'))
    )
    with op.batch_alter_table('integration_audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_integration_audit_log_created_at'), ['created_at'], unique=False)
        batch_op.create_index('ix_integration_audit_log_user_created', ['user_id', 'created_at'], unique=False)

    op.create_table('projects',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('colour', sa.String(length=7), nullable=False),
    sa.Column('archived', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_projects_owner_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_projects')),
    sa.UniqueConstraint('owner_id', 'name', name=op.f('uq_projects_owner_name'))
    )
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_projects_owner_id'), ['owner_id'], unique=False)

    op.create_table('oauth_states',
    sa.Column('state_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('pending_payload_enc', sa.Text(), nullable=True),
    sa.Column('connection_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['connection_id'], ['atlassian_connections.id'], name=op.f('fk_oauth_states_connection_id_atlassian_connections'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_oauth_states_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('state_hash', name=op.f('pk_oauth_states'))
    )
    with op.batch_alter_table('oauth_states', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_oauth_states_user_id'), ['user_id'], unique=False)

    op.create_table('sync_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('connection_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('trigger', sa.String(length=20), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('pages_fetched', sa.Integer(), nullable=False),
    sa.Column('rate_limit', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('new_count', sa.Integer(), nullable=False),
    sa.Column('updated_count', sa.Integer(), nullable=False),
    sa.Column('unchanged_count', sa.Integer(), nullable=False),
    sa.Column('gone_count', sa.Integer(), nullable=False),
    sa.Column('error_count', sa.Integer(), nullable=False),
    sa.Column('requests', sa.Integer(), nullable=False),
    sa.Column('duration_s', sa.Float(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.CheckConstraint("trigger IN ('manual', 'scheduled', 'cli')", name=op.f('ck_sync_runs_trigger')),
    sa.ForeignKeyConstraint(['connection_id'], ['atlassian_connections.id'], name=op.f('fk_sync_runs_connection_id_atlassian_connections'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_sync_runs_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_runs'))
    )
    with op.batch_alter_table('sync_runs', schema=None) as batch_op:
        batch_op.create_index('ix_sync_runs_connection_started', ['connection_id', 'started_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_sync_runs_user_id'), ['user_id'], unique=False)
        batch_op.create_index('uq_sync_runs_one_running_per_connection', ['connection_id'], unique=True, sqlite_where=sa.text("outcome = 'running'"), postgresql_where=sa.text("outcome = 'running'"))

    op.create_table('tasks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('owner_id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=True),
    sa.Column('title', sa.String(length=500), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('connection_id', sa.Integer(), nullable=True),
    sa.Column('confluence_task_id', sa.String(length=64), nullable=True),
    sa.Column('confluence_page_id', sa.String(length=64), nullable=True),
    sa.Column('confluence_page_title', sa.String(length=500), nullable=True),
    sa.Column('confluence_space_key', sa.String(length=255), nullable=True),
    sa.Column('confluence_space_name', sa.String(length=500), nullable=True),
    sa.Column('confluence_url', sa.String(length=2000), nullable=True),
    sa.Column('confluence_remote_status', sa.String(length=20), nullable=True),
    sa.Column('sync_state', sa.String(length=20), nullable=False),
    sa.Column('sync_error', sa.Text(), nullable=True),
    sa.CheckConstraint("source IN ('manual', 'confluence')", name=op.f('ck_tasks_source')),
    sa.CheckConstraint("status IN ('backlog', 'todo', 'in_progress', 'done')", name=op.f('ck_tasks_status')),
    sa.CheckConstraint("sync_state IN ('none', 'synced', 'waiting', 'failed', 'conflict')", name=op.f('ck_tasks_sync_state')),
    sa.CheckConstraint('length(trim(title)) > 0', name=op.f('ck_tasks_title_not_blank')),
    sa.ForeignKeyConstraint(['connection_id'], ['atlassian_connections.id'], name=op.f('fk_tasks_connection_id_atlassian_connections'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['owner_id'], ['users.id'], name=op.f('fk_tasks_owner_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_tasks_project_id_projects'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tasks')),
    sa.UniqueConstraint('connection_id', 'confluence_task_id', name=op.f('uq_tasks_connection_confluence_task'))
    )
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.create_index('ix_tasks_owner_status_position', ['owner_id', 'status', 'position'], unique=False)
        batch_op.create_index(batch_op.f('ix_tasks_project_id'), ['project_id'], unique=False)

    op.create_table('completion_outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('connection_id', sa.Integer(), nullable=True),
    sa.Column('confluence_task_id', sa.String(length=64), nullable=False),
    sa.Column('desired_status', sa.String(length=20), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("desired_status IN ('complete', 'incomplete')", name=op.f('ck_completion_outbox_desired_status')),
    sa.CheckConstraint("state IN ('pending', 'sending', 'done', 'failed')", name=op.f('ck_completion_outbox_state')),
    sa.ForeignKeyConstraint(['connection_id'], ['atlassian_connections.id'], name=op.f('fk_completion_outbox_connection_id_atlassian_connections'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_completion_outbox_task_id_tasks'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_completion_outbox_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_completion_outbox'))
    )
    with op.batch_alter_table('completion_outbox', schema=None) as batch_op:
        batch_op.create_index('ix_completion_outbox_state_next', ['state', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_completion_outbox_task_id'), ['task_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_completion_outbox_user_id'), ['user_id'], unique=False)
        batch_op.create_index('uq_completion_outbox_one_pending_per_card', ['task_id'], unique=True, sqlite_where=sa.text("state = 'pending'"), postgresql_where=sa.text("state = 'pending'"))

    op.create_table('confluence_pending_tasks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('connection_id', sa.Integer(), nullable=False),
    sa.Column('confluence_task_id', sa.String(length=64), nullable=False),
    sa.Column('confluence_page_id', sa.String(length=64), nullable=True),
    sa.Column('confluence_blogpost_id', sa.String(length=64), nullable=True),
    sa.Column('confluence_page_title', sa.String(length=500), nullable=True),
    sa.Column('confluence_space_id', sa.String(length=64), nullable=True),
    sa.Column('confluence_space_key', sa.String(length=255), nullable=True),
    sa.Column('confluence_space_name', sa.String(length=500), nullable=True),
    sa.Column('confluence_url', sa.String(length=2000), nullable=True),
    sa.Column('task_title', sa.String(length=500), nullable=False),
    sa.Column('task_description', sa.Text(), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('gone_reason', sa.String(length=200), nullable=True),
    sa.Column('project_id', sa.Integer(), nullable=True),
    sa.Column('edited_fields', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('remote_status', sa.String(length=20), nullable=True),
    sa.Column('remote_updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('trackli_task_id', sa.Integer(), nullable=True),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('pending', 'approved', 'dismissed', 'gone')", name=op.f('ck_confluence_pending_tasks_status')),
    sa.ForeignKeyConstraint(['connection_id'], ['atlassian_connections.id'], name=op.f('fk_confluence_pending_tasks_connection_id_atlassian_connections'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_confluence_pending_tasks_project_id_projects'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['trackli_task_id'], ['tasks.id'], name=op.f('fk_confluence_pending_tasks_trackli_task_id_tasks'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_confluence_pending_tasks_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_confluence_pending_tasks')),
    sa.UniqueConstraint('connection_id', 'confluence_task_id', name=op.f('uq_confluence_pending_tasks_connection_task'))
    )
    with op.batch_alter_table('confluence_pending_tasks', schema=None) as batch_op:
        batch_op.create_index('ix_confluence_pending_tasks_user_status', ['user_id', 'status'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('confluence_pending_tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_confluence_pending_tasks_user_status')

    op.drop_table('confluence_pending_tasks')
    with op.batch_alter_table('completion_outbox', schema=None) as batch_op:
        batch_op.drop_index('uq_completion_outbox_one_pending_per_card', sqlite_where=sa.text("state = 'pending'"), postgresql_where=sa.text("state = 'pending'"))
        batch_op.drop_index(batch_op.f('ix_completion_outbox_user_id'))
        batch_op.drop_index(batch_op.f('ix_completion_outbox_task_id'))
        batch_op.drop_index('ix_completion_outbox_state_next')

    op.drop_table('completion_outbox')
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tasks_project_id'))
        batch_op.drop_index('ix_tasks_owner_status_position')

    op.drop_table('tasks')
    with op.batch_alter_table('sync_runs', schema=None) as batch_op:
        batch_op.drop_index('uq_sync_runs_one_running_per_connection', sqlite_where=sa.text("outcome = 'running'"), postgresql_where=sa.text("outcome = 'running'"))
        batch_op.drop_index(batch_op.f('ix_sync_runs_user_id'))
        batch_op.drop_index('ix_sync_runs_connection_started')

    op.drop_table('sync_runs')
    with op.batch_alter_table('oauth_states', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_oauth_states_user_id'))

    op.drop_table('oauth_states')
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_projects_owner_id'))

    op.drop_table('projects')
    with op.batch_alter_table('integration_audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_integration_audit_log_user_created')
        batch_op.drop_index(batch_op.f('ix_integration_audit_log_created_at'))

    op.drop_table('integration_audit_log')
    with op.batch_alter_table('atlassian_connections', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_atlassian_connections_user_id'))

    op.drop_table('atlassian_connections')
    op.drop_table('users')
