"""ticket source and filer; duty roster

Revision ID: f3a1c2d4e5b6
Revises: d0902ca7745b
Create Date: 2026-12-06 23:05:00
"""
from alembic import op
import sqlalchemy as sa


revision = 'f3a1c2d4e5b6'
down_revision = 'd0902ca7745b'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMNs, not batch mode: on SQLite batch mode copies and drops the ticket table, which its
    # events' foreign keys forbid (tests/integration/test_upgrade.py upgrades a database full of tickets)
    op.add_column('ticket', sa.Column('source', sa.String(length=16), server_default='chat', nullable=False))
    op.add_column('ticket', sa.Column('filed_by', sa.Integer(), nullable=True))
    op.create_index(op.f('ix_ticket_source'), 'ticket', ['source'], unique=False)
    op.create_table('duty_shift',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('community_id', sa.String(length=64), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('set_by', sa.String(length=64), nullable=False),
    sa.Column('set_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('community_id', 'day', 'staff_id', name='uq_duty_shift')
    )
    op.create_index(op.f('ix_duty_shift_community_id'), 'duty_shift', ['community_id'], unique=False)
    op.create_index(op.f('ix_duty_shift_day'), 'duty_shift', ['day'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_duty_shift_day'), table_name='duty_shift')
    op.drop_index(op.f('ix_duty_shift_community_id'), table_name='duty_shift')
    op.drop_table('duty_shift')
    op.drop_index(op.f('ix_ticket_source'), table_name='ticket')
    with op.batch_alter_table('ticket', schema=None) as batch_op:
        batch_op.drop_column('filed_by')
        batch_op.drop_column('source')
