"""state shared by replicas: the WeChat access token, background jobs' progress, webhook update claims and
long Telegram button payloads (WeChat's message claims move to update_claim, shared with Telegram)

Revision ID: e1a2b3c4d5f6
Revises: d6f9a3b4c5e7
Create Date: 2026-12-07 02:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = 'e1a2b3c4d5f6'
down_revision = 'd6f9a3b4c5e7'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('wechat_claim', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_wechat_claim_claimed_at'))
    op.drop_table('wechat_claim')  # a claim lives a minute: nothing to carry over
    op.create_table('wechat_token',
    sa.Column('app_id', sa.String(length=64), nullable=False),
    sa.Column('token', sa.String(length=1024), nullable=False),
    sa.Column('refresh_at', sa.Float(), nullable=False),
    sa.Column('lease_until', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('app_id')
    )
    op.create_table('background_job',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('stage', sa.String(length=16), nullable=False),
    sa.Column('done', sa.Integer(), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('started', sa.Float(), nullable=False),
    sa.Column('finished', sa.Float(), nullable=True),
    sa.Column('beat', sa.Float(), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('failed', sa.JSON(), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('background_job', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_background_job_started'), ['started'], unique=False)
    op.create_table('update_claim',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('done', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    with op.batch_alter_table('update_claim', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_update_claim_claimed_at'), ['claimed_at'], unique=False)
    op.create_table('callback_payload',
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('token')
    )
    with op.batch_alter_table('callback_payload', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_callback_payload_created_at'), ['created_at'], unique=False)


def downgrade() -> None:
    op.create_table('wechat_claim',
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    with op.batch_alter_table('wechat_claim', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_wechat_claim_claimed_at'), ['claimed_at'], unique=False)
    with op.batch_alter_table('callback_payload', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_callback_payload_created_at'))
    op.drop_table('callback_payload')
    with op.batch_alter_table('update_claim', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_update_claim_claimed_at'))
    op.drop_table('update_claim')
    with op.batch_alter_table('background_job', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_background_job_started'))
    op.drop_table('background_job')
    op.drop_table('wechat_token')
