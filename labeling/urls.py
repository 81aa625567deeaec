"""HTML pages of the review UI."""

urlpatterns = []
