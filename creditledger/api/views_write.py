"""The platform API's writes: one view per action, each calling one service.

Scopes: `reports:write` reports suspected violations, reads what became of them and
acknowledges measures (the platform's side of a measure, as the key's scope label says);
`shops:write` declares shops.
"""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from creditledger.api import serializers_write as s
from creditledger.api.auth import actor_for, platform_of
from creditledger.api.idempotency import (
    HEADER,
    MAX_KEY_LENGTH,
    file_digest,
    idempotency_key,
    request_fingerprint,
    run_once,
)
from creditledger.api.openapi import errors
from creditledger.api.parsers import JSONParser
from creditledger.exceptions import ApplicationError
from penalties.models import Restriction, Violation
from penalties.services import report_submit, restriction_acknowledge
from traders.models import ApiKey
from traders.services import shops_declare

EVIDENCE_FIELDS = ("files", "files[]")


def _key_parameter(*, required: bool) -> OpenApiParameter:
    return OpenApiParameter(
        HEADER,
        {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH, "pattern": r"^[\x20-\x7e]+$"},
        OpenApiParameter.HEADER,
        required=required,
        description=_(
            "A unique value per request (e.g. a UUID): 1-200 printable ASCII characters. A retry "
            "with the same key and the same request gets the stored response; the same "
            "key with another request gets 422."
        ),
    )


def reports_of(platform):
    """The reports a platform filed; nobody else's."""
    return (
        Violation.objects.filter(source=Violation.Source.PLATFORM_REPORT, reporting_platform=platform)
        .select_related("trader", "shop", "type")
        .prefetch_related("evidence")
    )


class ReportCreateApi(APIView):
    required_scope = ApiKey.Scope.REPORTS_WRITE
    parser_classes = [JSONParser, MultiPartParser]

    @extend_schema(
        operation_id="reports_create",
        summary="Report a suspected violation",
        description=_(
            "JSON, or multipart/form-data with evidence files in `files`. The report and every "
            "file are recorded together or not at all; it enters the review queue as pending."
        ),
        request={
            "application/json": s.ReportInputSerializer,
            "multipart/form-data": s.ReportMultipartSerializer,
        },
        parameters=[_key_parameter(required=True)],
        responses={201: s.ReportSerializer, **errors(400, 401, 403, 413, 415, 422, 429)},
        tags=["reports"],
    )
    def post(self, request):
        key = idempotency_key(request, required=True)
        limit = EvidenceSizeLimit()
        request._request.upload_handlers.insert(0, limit)
        files = _evidence_files(request)
        limit.check()
        fingerprint = request_fingerprint(
            request, files=[(field, upload.name, file_digest(upload)) for field, upload in files]
        )

        def perform():
            platform = platform_of(request)
            serializer = s.ReportInputSerializer(data=request.data, context={"platform": platform})
            serializer.is_valid(raise_exception=True)
            violation = report_submit(
                actor=actor_for(request),
                files=[upload for _field, upload in files],
                **serializer.validated_data,
            )
            return status.HTTP_201_CREATED, s.ReportSerializer(reports_of(platform).get(pk=violation.pk)).data

        response = run_once(request, key=key, fingerprint=fingerprint, perform=perform)
        if response.status_code == status.HTTP_201_CREATED:
            response["Location"] = response.data["links"]["self"]
        return response


class EvidenceSizeLimit(FileUploadHandler):
    """Stop reading an upload once it passes EVIDENCE_MAX_BYTES, rather than spooling all of
    it to disk only to refuse it afterwards; check() then names the file."""

    def __init__(self, request=None) -> None:
        super().__init__(request)
        self.seen: dict[str, int] = {}
        self.too_large: list[tuple[str, int]] = []

    def new_file(self, field_name, *args, **kwargs) -> None:
        super().new_file(field_name, *args, **kwargs)
        self.index = self.seen.get(field_name, 0)
        self.seen[field_name] = self.index + 1

    def receive_data_chunk(self, raw_data, start):
        if start + len(raw_data) > settings.EVIDENCE_MAX_BYTES:
            self.too_large.append((self.field_name, self.index))
            raise SkipFile
        return raw_data

    def file_complete(self, file_size):
        return None  # the next handler builds the file

    def check(self) -> None:
        if self.too_large:
            field, index = self.too_large[0]
            name = "files" if field in EVIDENCE_FIELDS else field
            raise ApplicationError(
                _("The file is larger than the limit of %(n)d bytes.") % {"n": settings.EVIDENCE_MAX_BYTES},
                field=f"{name}.{index}",
                code="too_large",
            )


def _evidence_files(request) -> list[tuple[str, object]]:
    unknown = sorted(set(request.FILES) - set(EVIDENCE_FIELDS))
    if unknown:
        raise ApplicationError(
            _("Send evidence files in the field 'files'."), field=unknown[0], code="unknown_field"
        )
    return [(name, upload) for name in EVIDENCE_FIELDS for upload in request.FILES.getlist(name)]


class ReportDetailApi(generics.RetrieveAPIView):
    required_scope = ApiKey.Scope.REPORTS_WRITE
    serializer_class = s.ReportSerializer
    filter_backends: list = []

    def get_queryset(self):
        return reports_of(platform_of(self.request))

    def get_object(self):
        try:
            return super().get_object()
        except Http404:
            raise NotFound(_("Your platform filed no report with this id.")) from None

    @extend_schema(
        operation_id="reports_retrieve",
        summary="What became of a report",
        responses={200: s.ReportSerializer, **errors(401, 403, 404, 429)},
        tags=["reports"],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ShopsDeclareApi(APIView):
    required_scope = ApiKey.Scope.SHOPS_WRITE
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="shops_declare",
        summary="Declare your shops and who operates them",
        description=_(
            "Upsert up to API_BULK_LIMIT shops in one call, all or nothing: one bad item fails the "
            "call, naming the item (fields such as items.3.trader_uscc). A valid code not yet "
            "registered registers the trader (trader_name required). Shops not listed are left "
            "as they are."
        ),
        request=s.ShopsDeclareSerializer,
        responses={200: s.ShopsDeclaredSerializer, **errors(400, 401, 403, 413, 415, 429)},
        tags=["shops"],
    )
    def put(self, request):
        serializer = s.ShopsDeclareSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        results = shops_declare(
            actor=actor_for(request), platform=platform_of(request), items=serializer.validated_data["items"]
        )
        counts = {result: 0 for result in ("created", "updated", "unchanged")}
        for done in results:
            counts[done.result] += 1
        body = {
            **counts,
            "traders_registered": sum(done.trader_registered for done in results),
            "items": results,
        }
        return Response(s.ShopsDeclaredSerializer(body).data)


class RestrictionAckApi(APIView):
    required_scope = ApiKey.Scope.REPORTS_WRITE
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="restrictions_ack",
        summary="Declare that you enforced a measure",
        description=_(
            "For a measure in force (or lifted after it was) on a trader with a shop on your "
            "platform; once per platform. Repeating it with the same enforced_at answers 200 "
            "with the existing acknowledgement; another enforced_at is refused. Scope: reports:write."
        ),
        request=s.AckInputSerializer,
        parameters=[_key_parameter(required=False)],
        responses={
            201: s.AckSerializer,
            200: OpenApiResponse(s.AckSerializer, description=_("Already acknowledged, same enforced_at.")),
            **errors(400, 401, 403, 404, 413, 415, 422, 429),
        },
        tags=["restrictions"],
    )
    def post(self, request, pk: int):
        key = idempotency_key(request, required=False)
        fingerprint = request_fingerprint(request) if key else ""

        def perform():
            restriction = Restriction.objects.filter(pk=pk).first()
            if restriction is None:
                raise NotFound(_("No measure has this id."))
            serializer = s.AckInputSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            ack, created = restriction_acknowledge(
                actor=actor_for(request), restriction=restriction, **serializer.validated_data
            )
            code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
            return code, s.AckSerializer(ack).data

        return run_once(request, key=key, fingerprint=fingerprint, perform=perform)
