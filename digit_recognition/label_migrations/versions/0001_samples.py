"""samples and store_totals: the label store's metadata

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "samples",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("label", sa.SmallInteger, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("prediction", sa.SmallInteger),
        sa.Column("confidence", sa.Float),
        sa.Column("model_version", sa.String(200)),
        sa.Column("model_verdict", sa.String(32)),
        sa.Column("disagreed", sa.Boolean, nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("byte_size", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("previous_label", sa.SmallInteger),
        sa.Column("relabeled_at", sa.DateTime),
        sa.Column("extra", sa.Text),
        sa.CheckConstraint("label >= 0 AND label <= 9", name="ck_samples_label_digit"),
        sa.UniqueConstraint("sha256", "label", name="uq_samples_sha256_label"),
    )
    op.create_index("ix_samples_created", "samples", ["created_at", "id"])
    op.create_index("ix_samples_label_created", "samples", ["label", "created_at", "id"])
    op.create_index("ix_samples_disagreed_created", "samples", ["disagreed", "created_at", "id"])
    op.create_index("ix_samples_label_disagreed_created", "samples",
                    ["label", "disagreed", "created_at", "id"])
    totals = op.create_table(
        "store_totals",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("samples", sa.BigInteger, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(totals, [{"id": 1, "samples": 0, "bytes": 0}])


def downgrade() -> None:
    op.drop_table("store_totals")
    op.drop_table("samples")
