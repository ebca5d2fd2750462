# No migrations: notifications owns no table (notifications/models.py). The package stays so that
# `makemigrations --check` (tests/test_project_checks.py) notices a model added here; without it,
# makemigrations skips the app unless named.
