"""The Content-Security-Policy header (Django 5.2 has none built in).

The policy is settings.CONTENT_SECURITY_POLICY; an empty value sends no header. A view that sets
its own Content-Security-Policy keeps it.
"""

from django.conf import settings


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        policy = settings.CONTENT_SECURITY_POLICY.strip()
        if policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = policy
        return response
