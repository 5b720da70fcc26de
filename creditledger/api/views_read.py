"""The read side of the platform API: trader status, bulk lookups, the change feed, the
ledger's public key and latest checkpoint.

Views parse input, call one selector and serialize; the queries live in selectors.py.
"""

from __future__ import annotations

import hashlib

from django.http import HttpResponse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import parse_etags
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from creditledger.api import feed_sql, selectors, serializers_read
from creditledger.api.auth import PublicRead, platform_of
from creditledger.api.openapi import RETRY_AFTER, errors
from creditledger.api.parsers import JSONParser
from creditledger.api.serializers_read import (
    ChangesQuerySerializer,
    CheckpointSerializer,
    FeedSerializer,
    LookupRequestSerializer,
    LookupResponseSerializer,
    PublicKeySerializer,
    ShopQuerySerializer,
    TraderStatusSerializer,
)
from creditledger.exceptions import ApplicationError, Conflict
from creditledger.ledger import selectors as ledger_selectors
from creditledger.ledger import signing
from creditledger.routers import read_db
from traders import uscc as uscc_rules
from traders.models import ApiKey, Trader

STATUS_READ = ApiKey.Scope.STATUS_READ.value

# 18 characters of the code's alphabet, spaces allowed between them, either case.
USCC_SCHEMA = {
    "type": "string",
    "minLength": 18,
    "maxLength": 64,
    "pattern": r"^ *(?:[0-9A-HJ-NPQRTUWXYa-hj-npqrtuwxy] *){18}$",
}
IF_NONE_MATCH = OpenApiParameter(
    "If-None-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description="The ETag of the copy you hold: 304 with no body while it is current.",
)
ETAG = OpenApiParameter(
    "ETag",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    response=[200, 304],
    description="Changes whenever the trader's status, score, grade, measures or your shops of it do.",
)
NOT_MODIFIED = OpenApiResponse(description="Your copy is current (no body).")


def trader_etag(trader: Trader) -> str:
    """The trader's version, plus the caller's shops: a shop declaration leaves the version alone."""
    shops = "\n".join(
        f"{s.platform_shop_id}\t{s.name}\t{s.url}\t{s.opened_on}\t{s.closed_on}"
        for s in trader.platform_shops
    )
    digest = hashlib.blake2b(shops.encode(), digest_size=6).hexdigest()
    return f'W/"{trader.version}.{digest}"'


def _is_current(request: Request, etag: str) -> bool:
    held = parse_etags(request.headers.get("If-None-Match", ""))
    return "*" in held or etag.removeprefix("W/") in {tag.removeprefix("W/") for tag in held}


def status_response(request: Request, trader: Trader) -> Response:
    etag = trader_etag(trader)
    if _is_current(request, etag):
        response = Response(status=304)
    else:
        response = Response(serializers_read.trader_status_data(trader))
    response["ETag"] = etag
    # The answer depends on who asks (their shops): no shared cache may reuse it.
    response["Cache-Control"] = "private, no-cache"
    patch_vary_headers(response, ["Authorization"])
    return response


def parse_code(raw: str, field: str = "uscc") -> str:
    try:
        return selectors.parse_code(raw).code
    except uscc_rules.USCCError as exc:
        raise ApplicationError(exc.message, field=field, code=f"uscc_{exc.rule}", value=raw) from exc


class StatusReadView(APIView):
    required_scope = STATUS_READ


class TraderDetailView(StatusReadView):
    @extend_schema(
        operation_id="traders_retrieve",
        summary="A trader's status by code",
        tags=["traders"],
        parameters=[
            OpenApiParameter(
                "uscc",
                USCC_SCHEMA,
                OpenApiParameter.PATH,
                description=(
                    "The unified social credit code (GB 32100-2015: 18 characters of 0-9 and A-Y "
                    "without I, O, S, V, Z, the last a check character); lower case and spaces "
                    "are accepted. A code breaking the check character is a 400 (`uscc_check`)."
                ),
            ),
            IF_NONE_MATCH,
            ETAG,
            RETRY_AFTER,
        ],
        responses={
            200: TraderStatusSerializer,
            304: NOT_MODIFIED,
            **errors(400, 403, 404, e400="The code breaks a rule; `code` names it (e.g. `uscc_check`)."),
        },
    )
    def get(self, request: Request, uscc: str) -> Response:
        code = parse_code(uscc)
        trader = selectors.trader_status(uscc=code, platform=platform_of(request))
        if trader is None:
            raise exceptions.NotFound(f"No trader is registered with the code {code}.")
        return status_response(request, trader)


class TraderByShopView(StatusReadView):
    query_serializer = ShopQuerySerializer

    @extend_schema(
        operation_id="traders_by_shop",
        summary="The status of the trader operating one of your shops",
        tags=["traders"],
        parameters=[ShopQuerySerializer, IF_NONE_MATCH, ETAG, RETRY_AFTER],
        responses={
            200: TraderStatusSerializer,
            304: NOT_MODIFIED,
            **errors(400, 403, 404, e404="Your platform has declared no shop with this id."),
        },
    )
    def get(self, request: Request) -> Response:
        query = ShopQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        shop_id = query.validated_data["shop"]
        trader = selectors.trader_by_shop(platform=platform_of(request), platform_shop_id=shop_id)
        if trader is None:
            raise exceptions.NotFound(f"Your platform has declared no shop with the id {shop_id!r}.")
        return status_response(request, trader)


class TraderLookupView(StatusReadView):
    parser_classes = [JSONParser]  # a list of codes is JSON; no multipart form of it

    @extend_schema(
        operation_id="traders_lookup",
        summary="Many traders at once, by code or by your shop ids",
        description="Up to 1000 codes and shop ids in total. Each input gets one result, in the "
        "order sent (codes first): `found` with the trader, `not_found`, or `invalid` with the "
        "code rule that failed.",
        tags=["traders"],
        request=LookupRequestSerializer,
        parameters=[RETRY_AFTER],
        responses={200: LookupResponseSerializer, **errors(400, 403, 413)},
        examples=[
            OpenApiExample(
                "codes and shops",
                value={"codes": ["91350100M000100Y43", "91350100m000100y44"], "shop_ids": ["shop-1"]},
                request_only=True,
            )
        ],
    )
    def post(self, request: Request) -> Response:
        body = LookupRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        items = selectors.traders_lookup(
            platform=platform_of(request),
            codes=body.validated_data["codes"],
            shop_ids=body.validated_data["shop_ids"],
        )
        counts = {"found": 0, "not_found": 0, "invalid": 0}
        for item in items:
            counts[item.result] += 1
        tz = timezone.get_current_timezone()
        results = [serializers_read.lookup_item_data(item, tz) for item in items]
        return Response({"results": results, **counts})


class ChangesView(StatusReadView):
    query_serializer = ChangesQuerySerializer

    @extend_schema(
        operation_id="changes_list",
        summary="The change feed: status-relevant ledger entries after a seq",
        description="Entries come in seq order, which is commit order: resume with `after=next` "
        "and you never miss an entry. Replaying from 0 rebuilds every trader's status.",
        tags=["changes"],
        parameters=[ChangesQuerySerializer, RETRY_AFTER],
        responses={200: FeedSerializer, **errors(400, 403, 409)},
    )
    def get(self, request: Request) -> Response:
        query = ChangesQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        after, limit = query.validated_data["after"], query.validated_data["limit"]
        platform = platform_of(request)
        db = read_db()
        if feed_sql.available(db):
            seqs, texts, has_more = feed_sql.feed_page(
                db=db, after=after, limit=limit, platform_code=platform.code
            )
            if not seqs:
                _refuse_beyond_head(after)
            body = feed_sql.page_bytes(texts, next_seq=seqs[-1] if seqs else after, has_more=has_more)
            return HttpResponse(body, content_type="application/json")
        entries, has_more = selectors.feed(after=after, limit=limit)
        if not entries:
            _refuse_beyond_head(after)
        return Response(
            {
                "entries": [serializers_read.feed_entry_data(entry, platform) for entry in entries],
                "next": entries[-1].seq if entries else after,
                "has_more": has_more,
            }
        )


def _refuse_beyond_head(after: int) -> None:
    """An empty page after a cursor past the head is not "nothing new": this ledger was
    restored to an earlier point, or the platform's state is from elsewhere, and an empty
    page would let it skip the entries that will take those seqs. A 409 naming the head."""
    if after == 0:
        return
    head = selectors.feed_head()
    if after > head:
        raise Conflict(
            f"after={after} is beyond the ledger's head, seq {head}: resume from a seq this "
            "server gave you (at most the head)",
            field="after",
            code="cursor_beyond_head",
            extra={"head": head},
        )


class PublicKeyView(PublicRead, APIView):  # anyone may check the ledger
    @extend_schema(
        operation_id="ledger_public_key",
        summary="The Ed25519 key that signs ledger checkpoints",
        tags=["ledger"],
        parameters=[RETRY_AFTER],
        responses={200: PublicKeySerializer, **errors()},
    )
    def get(self, request: Request) -> Response:
        return Response(PublicKeySerializer(signing.public_key_info()).data)


class LatestCheckpointView(PublicRead, APIView):  # anyone may check the ledger
    @extend_schema(
        operation_id="ledger_checkpoint_latest",
        summary="The latest signed checkpoint of the ledger",
        tags=["ledger"],
        parameters=[RETRY_AFTER],
        responses={200: CheckpointSerializer, **errors(404, e404="No checkpoint has been signed yet.")},
    )
    def get(self, request: Request) -> Response:
        checkpoint = ledger_selectors.latest_checkpoint()
        if checkpoint is None:
            raise exceptions.NotFound("No checkpoint has been signed yet.")
        response = Response(CheckpointSerializer(checkpoint).data)
        response["Cache-Control"] = "no-cache"
        return response
