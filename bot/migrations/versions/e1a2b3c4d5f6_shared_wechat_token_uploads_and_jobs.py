"""the WeChat access token shared by replicas

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
    op.create_table('wechat_token',
    sa.Column('app_id', sa.String(length=64), nullable=False),
    sa.Column('token', sa.String(length=1024), nullable=False),
    sa.Column('refresh_at', sa.Float(), nullable=False),
    sa.Column('lease_until', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('app_id')
    )


def downgrade() -> None:
    op.drop_table('wechat_token')
