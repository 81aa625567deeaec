from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from config import health
from config.api import SchemaView, SwaggerDocsView
from config.api_index import ApiIndexView
from config.favicon import favicon
from config.queue_dashboard import queue_dashboard_urlpatterns

# Under /api/ an unrouted URL or an unhandled error answers the API's JSON error shape.
handler404 = "config.api.page_not_found"
handler500 = "config.api.server_error"

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("favicon.ico", favicon, name="favicon"),
    path("admin/rq/", include((queue_dashboard_urlpatterns(), "django_rq"))),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/schema/", SchemaView.as_view(), name="api-schema"),
    path("api/docs/", SwaggerDocsView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", ApiIndexView.as_view(), name="api-index"),
    path("api/v1/", include("datasets.api_urls")),
    path("api/v1/", include("distiller.api_urls")),
    path("api/v1/", include("labeling.api_urls")),
    path("api/v1/", include("evaluation.api_urls")),
    path("", include("evaluation.urls")),
    path("", include("labeling.urls")),
]
