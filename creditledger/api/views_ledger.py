"""The ledger's verification endpoints: the signed history, and proofs out of the tree.

A platform or an auditor holding a checkpoint (size S, root R, signed) checks that an entry
is in it with an inclusion proof, and that a newer checkpoint extends it with a consistency
proof; both are RFC 9162 proofs, read from the stored tiles in O(log n) (docs/api.md shows
the client side). Only sealed entries are in the tree.
"""

from __future__ import annotations

import base64

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, permissions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from creditledger.api.auth import PublicRead, WitnessThrottle
from creditledger.api.openapi import RETRY_AFTER, errors
from creditledger.api.parsers import JSONParser
from creditledger.api.serializers_read import (
    CheckpointPageSerializer,
    CheckpointSerializer,
    CheckpointsQuerySerializer,
    ConsistencyProofSerializer,
    ConsistencyQuerySerializer,
    InclusionProofSerializer,
    InclusionQuerySerializer,
)
from creditledger.api.serializers_write import CosignatureInputSerializer, CosignatureRecordedSerializer
from creditledger.exceptions import Conflict
from creditledger.ledger import selectors, witness_services
from creditledger.ledger.merkle import MerkleError

MAX_COSIGNATURE_BODY = 2048  # bytes: a size and one signature line

BEYOND_TREE = "The tree has not reached this size yet (`tree_size` holds its size)."


def _b64(hashes) -> list[str]:
    return [base64.b64encode(h).decode("ascii") for h in hashes]


def _within_tree(field: str, value: int) -> None:
    size = selectors.tree_size_reaching(value)
    if value > size:
        # A size this ledger has not reached (yet): 409, naming the size it has.
        raise Conflict(
            f"must be at most the tree size ({size}), got {value}",
            field=field,
            code="beyond_tree",
            value=value,
            extra={"tree_size": size},
        )


def _proved(field: str, value: int, prove):
    """prove(), for a tree of `value` entries (named by query field `field`): 409 when the
    tree has not reached it. Tiles shorter than the proof needs mean the tree is smaller than
    this process remembered (restored from a backup): ask the database again, 409 if `value`
    is past it now, else the tiles are wrong and the error stands."""
    _within_tree(field, value)
    try:
        return prove()
    except MerkleError:
        selectors.forget_tree_size()
        _within_tree(field, value)
        raise


class CheckpointListView(PublicRead, APIView):  # anyone may check the ledger
    query_serializer = CheckpointsQuerySerializer

    @extend_schema(
        operation_id="ledger_checkpoints_list",
        summary="The signed checkpoints after a tree size, oldest first",
        description="The log's history: every checkpoint of a tree larger than `after`. Keep the "
        "ones you have checked; check each new one against the last with a consistency proof.",
        tags=["ledger"],
        parameters=[CheckpointsQuerySerializer, RETRY_AFTER],
        responses={200: CheckpointPageSerializer, **errors(400)},
    )
    def get(self, request: Request) -> Response:
        query = CheckpointsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        after, limit = query.validated_data["after"], query.validated_data["limit"]
        found = selectors.checkpoints_after(after, limit + 1)
        page = found[:limit]
        return Response(
            {
                "checkpoints": CheckpointSerializer(page, many=True).data,
                "next": page[-1].seq if page else after,
                "has_more": len(found) > limit,
            }
        )


class InclusionProofView(PublicRead, APIView):  # anyone may check the ledger
    query_serializer = InclusionQuerySerializer

    @extend_schema(
        operation_id="ledger_proof_inclusion",
        summary="Proof that entry `seq` is in the tree of `size` entries",
        tags=["ledger"],
        parameters=[InclusionQuerySerializer, RETRY_AFTER],
        responses={200: InclusionProofSerializer, **errors(400, 409, e409=BEYOND_TREE)},
    )
    def get(self, request: Request) -> Response:
        query = InclusionQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        seq, size = query.validated_data["seq"], query.validated_data["size"]
        leaf, proof = _proved("size", size, lambda: selectors.inclusion(seq=seq, size=size))
        response = Response(
            {
                "seq": seq,
                "leaf_index": seq - 1,
                "tree_size": size,
                "leaf_hash": base64.b64encode(leaf).decode("ascii"),
                "proof": _b64(proof),
            }
        )
        response["Cache-Control"] = "public, max-age=86400, immutable"  # a proof never changes
        return response


class ConsistencyProofView(PublicRead, APIView):  # anyone may check the ledger
    query_serializer = ConsistencyQuerySerializer

    @extend_schema(
        operation_id="ledger_proof_consistency",
        summary="Proof that the tree of `old` entries is a prefix of the tree of `new` entries",
        tags=["ledger"],
        parameters=[ConsistencyQuerySerializer, RETRY_AFTER],
        responses={200: ConsistencyProofSerializer, **errors(400, 409, e409=BEYOND_TREE)},
    )
    def get(self, request: Request) -> Response:
        query = ConsistencyQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        old, new = query.validated_data["old"], query.validated_data["new"]
        proof = _proved("new", new, lambda: selectors.consistency_proof(old=old, new=new))
        response = Response({"old": old, "new": new, "proof": _b64(proof)})
        response["Cache-Control"] = "public, max-age=86400, immutable"
        return response


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = f"A cosignature post is at most {MAX_COSIGNATURE_BODY} bytes."
    default_code = "too_large"


class CosignatureCreateApi(APIView):
    """A witness posts its cosignature of a checkpoint. No API key: the signature line is the
    credential, checked against the witness key an admin registered (witness_services)."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    throttle_classes = [WitnessThrottle]
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="ledger_cosignature_create",
        summary="Post a witness's cosignature of a checkpoint",
        description="The line must be a C2SP cosignature/v1 signature by a registered, active witness "
        "over the stored checkpoint of `size` entries. No API key is needed (the signature is the "
        "credential); posts are rate-limited per address. A repeat answers 200 with the cosignature "
        "already stored.",
        tags=["ledger"],
        auth=[],
        request=CosignatureInputSerializer,
        responses={
            201: CosignatureRecordedSerializer,
            200: OpenApiResponse(CosignatureRecordedSerializer, description="Already stored: the first one."),
            **{
                code: response
                for code, response in errors(
                    400,
                    413,
                    e400="Unknown checkpoint or witness, a malformed line, or a bad signature: `code` "
                    "names the rule, the message the value.",
                    e413=f"The body is larger than {MAX_COSIGNATURE_BODY} bytes.",
                    e429="Too many posts from this address: wait `Retry-After` seconds.",
                ).items()
                if code != 401  # no key is asked for
            },
        },
    )
    def post(self, request: Request) -> Response:
        if int(request.META.get("CONTENT_LENGTH") or 0) > MAX_COSIGNATURE_BODY:
            raise PayloadTooLarge()
        data = CosignatureInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        cosignature, created = witness_services.cosignature_record(
            size=data.validated_data["size"], line=data.validated_data["cosignature"]
        )
        body = {
            "checkpoint": cosignature.checkpoint.seq,
            "witness": str(cosignature.witness),
            "timestamp": cosignature.timestamp,
        }
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
