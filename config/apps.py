from django.contrib.admin.apps import AdminConfig


class DistillerAdminConfig(AdminConfig):
    """django.contrib.admin with the product's site (config/admin_site.py) as admin.site."""

    default_site = "config.admin_site.DistillerAdminSite"
