"""REST API of the health report: a topic's (reviewers of the topic and dataset admins), and a
file's, validate-only (dataset admins)."""

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from config.serializers import InputSerializer
from datasets.formats.readers import READERS
from datasets.health.services import file_health_report, topic_health_report
from datasets.health.sources import HEALTH_FILE_MAX_BYTES
from datasets.models import LANGUAGE_CHOICES
from datasets.permissions import IsDatasetAdmin, IsReviewerOrDatasetAdmin, topics_for_reviewer
from datasets.services import DatasetError

ERROR = OpenApiResponse(description='{"error": {"code", "message", "details"}}')
# The multipart envelope around the file: form fields and boundaries.
UPLOAD_OVERHEAD_BYTES = 64 * 1024


class FileHealthSerializer(InputSerializer):
    file = serializers.FileField(allow_empty_file=True, help_text=f"At most {HEALTH_FILE_MAX_BYTES // 2**20} MiB.")
    format = serializers.ChoiceField(choices=list(READERS), required=False, allow_blank=True, default="",
                                     help_text="Default: from the file's extension.")
    languages = serializers.CharField(required=False, default="en", max_length=100,
                                      help_text="Languages requested, comma-separated (e.g. en,de).")
    text_column = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)
    intent_column = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)

    def validate_languages(self, value):
        known = {code for code, _ in LANGUAGE_CHOICES}
        codes = [code.strip() for code in value.split(",") if code.strip()]
        if unknown := [code for code in codes if code not in known]:
            raise serializers.ValidationError(f"Unknown language {unknown[0]!r}: use {', '.join(sorted(known))}.")
        return codes or ["en"]


class TopicHealthView(APIView):
    """The health report of a topic: balance, duplicates and label conflicts, paraphrases,
    diversity, coverage, leakage, and verdicts first. 404 for a topic the user does not review."""

    permission_classes = [IsReviewerOrDatasetAdmin]

    @extend_schema(responses={200: OpenApiTypes.OBJECT, 404: ERROR})
    def get(self, request, topic_id: int):
        topic = get_object_or_404(topics_for_reviewer(request.user), pk=topic_id)
        return Response(topic_health_report(topic=topic))


class FileHealthView(APIView):
    """The health report of an uploaded file that is not imported: validate-only, nothing written.
    Bodies over the file limit are refused before they are read."""

    permission_classes = [IsDatasetAdmin]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request={"multipart/form-data": FileHealthSerializer},
                   responses={200: OpenApiTypes.OBJECT, 400: ERROR})
    def post(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > HEALTH_FILE_MAX_BYTES + UPLOAD_OVERHEAD_BYTES:
            raise DatasetError(f"The upload is {length:,} bytes, over the report's limit of "
                               f"{HEALTH_FILE_MAX_BYTES // 2**20} MiB: check a sample of the file.",
                               code="file_too_large")
        data = FileHealthSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        upload = fields.pop("file")
        report = file_health_report(files=[(upload.name or "upload.jsonl", upload)], **fields)
        return Response(report)
