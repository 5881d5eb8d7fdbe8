"""foundation: reference data, patients, accounts, audit log

Revision ID: 0001
Revises: 
Create Date: 2026-11-26 07:02:58.891291
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sqlalchemy.dialects import postgresql

import clinical_core.persistence.base

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('at', clinical_core.persistence.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=80), nullable=False),
    sa.Column('action', sa.String(length=60), nullable=False),
    sa.Column('entity_type', sa.String(length=40), nullable=False),
    sa.Column('entity_id', sa.String(length=60), nullable=False),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_action'), ['action'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_log_at'), ['at'], unique=False)
        batch_op.create_index('ix_audit_log_entity', ['entity_type', 'entity_id'], unique=False)

    op.create_table('drugs',
    sa.Column('code', sa.String(length=30), nullable=False),
    sa.Column('generic_name', sa.String(length=80), nullable=False),
    sa.Column('trade_name', sa.String(length=80), nullable=True),
    sa.Column('specification', sa.String(length=80), nullable=False),
    sa.Column('dosage_form', sa.String(length=30), nullable=False),
    sa.Column('unit', sa.String(length=10), nullable=False),
    sa.Column('price_fen', sa.Integer(), nullable=False),
    sa.Column('category', sa.String(length=20), nullable=False),
    sa.Column('control_class', sa.String(length=20), nullable=False),
    sa.Column('prescription_only', sa.Boolean(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('public_id', sa.String(length=40), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_drugs'))
    )
    with op.batch_alter_table('drugs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_drugs_code'), ['code'], unique=True)
        batch_op.create_index(batch_op.f('ix_drugs_generic_name'), ['generic_name'], unique=False)
        batch_op.create_index(batch_op.f('ix_drugs_public_id'), ['public_id'], unique=True)

    op.create_table('hospitals',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('short_name', sa.String(length=40), nullable=False),
    sa.Column('city', sa.String(length=40), nullable=False),
    sa.Column('hotline', sa.String(length=30), nullable=False),
    sa.Column('created_at', clinical_core.persistence.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('public_id', sa.String(length=40), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hospitals'))
    )
    with op.batch_alter_table('hospitals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hospitals_public_id'), ['public_id'], unique=True)

    op.create_table('patients',
    sa.Column('name_enc', sa.Text(), nullable=False),
    sa.Column('phone_enc', sa.Text(), nullable=False),
    sa.Column('phone_hash', sa.String(length=64), nullable=False),
    sa.Column('id_card_enc', sa.Text(), nullable=False),
    sa.Column('id_card_hash', sa.String(length=64), nullable=False),
    sa.Column('health_card_enc', sa.Text(), nullable=True),
    sa.Column('health_card_hash', sa.String(length=64), nullable=True),
    sa.Column('address_enc', sa.Text(), nullable=True),
    sa.Column('district_code', sa.String(length=20), nullable=True),
    sa.Column('sex', sa.String(length=1), nullable=False),
    sa.Column('birth_date', sa.Date(), nullable=False),
    sa.Column('openid', sa.String(length=64), nullable=True),
    sa.Column('created_at', clinical_core.persistence.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('public_id', sa.String(length=40), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patients'))
    )
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patients_district_code'), ['district_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_patients_health_card_hash'), ['health_card_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_patients_id_card_hash'), ['id_card_hash'], unique=True)
        batch_op.create_index(batch_op.f('ix_patients_openid'), ['openid'], unique=True)
        batch_op.create_index(batch_op.f('ix_patients_phone_hash'), ['phone_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_patients_public_id'), ['public_id'], unique=True)

    op.create_table('departments',
    sa.Column('hospital_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('parent_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('online', sa.Boolean(), nullable=False),
    sa.Column('public_id', sa.String(length=40), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['hospital_id'], ['hospitals.id'], name=op.f('fk_departments_hospital_id_hospitals'), initially='IMMEDIATE', deferrable=True),
    sa.ForeignKeyConstraint(['parent_id'], ['departments.id'], name=op.f('fk_departments_parent_id_departments'), initially='IMMEDIATE', deferrable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_departments'))
    )
    with op.batch_alter_table('departments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_departments_code'), ['code'], unique=True)
        batch_op.create_index(batch_op.f('ix_departments_public_id'), ['public_id'], unique=True)

    op.create_table('followers',
    sa.Column('openid', sa.String(length=64), nullable=False),
    sa.Column('patient_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('subscribed_at', clinical_core.persistence.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('unsubscribed_at', clinical_core.persistence.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('scene', sa.String(length=64), nullable=True),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_followers_patient_id_patients'), initially='IMMEDIATE', deferrable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_followers'))
    )
    with op.batch_alter_table('followers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_followers_openid'), ['openid'], unique=True)
        batch_op.create_index(batch_op.f('ix_followers_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_followers_subscribed_at'), ['subscribed_at'], unique=False)

    op.create_table('staff',
    sa.Column('employee_no', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('role', sa.String(length=30), nullable=False),
    sa.Column('title', sa.String(length=20), nullable=True),
    sa.Column('department_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('licence_no', sa.String(length=40), nullable=True),
    sa.Column('practising_since', sa.Date(), nullable=True),
    sa.Column('filing_status', sa.String(length=20), nullable=False),
    sa.Column('may_prescribe', sa.Boolean(), nullable=False),
    sa.Column('phone_enc', sa.Text(), nullable=True),
    sa.Column('phone_hash', sa.String(length=64), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', clinical_core.persistence.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('public_id', sa.String(length=40), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_staff_department_id_departments'), initially='IMMEDIATE', deferrable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff'))
    )
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_department_id'), ['department_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_staff_employee_no'), ['employee_no'], unique=True)
        batch_op.create_index(batch_op.f('ix_staff_phone_hash'), ['phone_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_staff_public_id'), ['public_id'], unique=True)
        batch_op.create_index(batch_op.f('ix_staff_role'), ['role'], unique=False)

    op.create_table('accounts',
    sa.Column('username', sa.String(length=60), nullable=False),
    sa.Column('role', sa.String(length=30), nullable=False),
    sa.Column('staff_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('patient_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', clinical_core.persistence.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('public_id', sa.String(length=40), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_accounts_patient_id_patients'), initially='IMMEDIATE', deferrable=True),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], name=op.f('fk_accounts_staff_id_staff'), initially='IMMEDIATE', deferrable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accounts'))
    )
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_accounts_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_accounts_public_id'), ['public_id'], unique=True)
        batch_op.create_index(batch_op.f('ix_accounts_staff_id'), ['staff_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_accounts_username'), ['username'], unique=True)

    op.create_table('his_visits',
    sa.Column('visit_no', sa.String(length=30), nullable=False),
    sa.Column('patient_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('department_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('doctor_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('visit_type', sa.String(length=20), nullable=False),
    sa.Column('visited_at', clinical_core.persistence.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('diagnoses', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_his_visits_department_id_departments'), initially='IMMEDIATE', deferrable=True),
    sa.ForeignKeyConstraint(['doctor_id'], ['staff.id'], name=op.f('fk_his_visits_doctor_id_staff'), initially='IMMEDIATE', deferrable=True),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_his_visits_patient_id_patients'), initially='IMMEDIATE', deferrable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_his_visits'))
    )
    with op.batch_alter_table('his_visits', schema=None) as batch_op:
        batch_op.create_index('ix_his_visits_patient_visited', ['patient_id', 'visited_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_his_visits_visit_no'), ['visit_no'], unique=True)

    op.create_table('api_tokens',
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=60), nullable=False),
    sa.Column('created_at', clinical_core.persistence.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', clinical_core.persistence.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', clinical_core.persistence.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('public_id', sa.String(length=40), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_api_tokens_account_id_accounts'), initially='IMMEDIATE', deferrable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens'))
    )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_tokens_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_api_tokens_public_id'), ['public_id'], unique=True)
        batch_op.create_index(batch_op.f('ix_api_tokens_token_hash'), ['token_hash'], unique=True)

    _make_audit_log_append_only()


def _make_audit_log_append_only() -> None:
    """The audit log refuses UPDATE and DELETE at the database level (R06: 全程留痕)."""
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
                f"BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
            )
    else:
        op.execute(
            "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_tokens_token_hash'))
        batch_op.drop_index(batch_op.f('ix_api_tokens_public_id'))
        batch_op.drop_index(batch_op.f('ix_api_tokens_account_id'))

    op.drop_table('api_tokens')
    with op.batch_alter_table('his_visits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_his_visits_visit_no'))
        batch_op.drop_index('ix_his_visits_patient_visited')

    op.drop_table('his_visits')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_accounts_username'))
        batch_op.drop_index(batch_op.f('ix_accounts_staff_id'))
        batch_op.drop_index(batch_op.f('ix_accounts_public_id'))
        batch_op.drop_index(batch_op.f('ix_accounts_patient_id'))

    op.drop_table('accounts')
    with op.batch_alter_table('staff', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_role'))
        batch_op.drop_index(batch_op.f('ix_staff_public_id'))
        batch_op.drop_index(batch_op.f('ix_staff_phone_hash'))
        batch_op.drop_index(batch_op.f('ix_staff_employee_no'))
        batch_op.drop_index(batch_op.f('ix_staff_department_id'))

    op.drop_table('staff')
    with op.batch_alter_table('followers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_followers_subscribed_at'))
        batch_op.drop_index(batch_op.f('ix_followers_patient_id'))
        batch_op.drop_index(batch_op.f('ix_followers_openid'))

    op.drop_table('followers')
    with op.batch_alter_table('departments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_departments_public_id'))
        batch_op.drop_index(batch_op.f('ix_departments_code'))

    op.drop_table('departments')
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patients_public_id'))
        batch_op.drop_index(batch_op.f('ix_patients_phone_hash'))
        batch_op.drop_index(batch_op.f('ix_patients_openid'))
        batch_op.drop_index(batch_op.f('ix_patients_id_card_hash'))
        batch_op.drop_index(batch_op.f('ix_patients_health_card_hash'))
        batch_op.drop_index(batch_op.f('ix_patients_district_code'))

    op.drop_table('patients')
    with op.batch_alter_table('hospitals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_hospitals_public_id'))

    op.drop_table('hospitals')
    with op.batch_alter_table('drugs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_drugs_public_id'))
        batch_op.drop_index(batch_op.f('ix_drugs_generic_name'))
        batch_op.drop_index(batch_op.f('ix_drugs_code'))

    op.drop_table('drugs')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_log_entity')
        batch_op.drop_index(batch_op.f('ix_audit_log_at'))
        batch_op.drop_index(batch_op.f('ix_audit_log_action'))

    op.drop_table('audit_log')
