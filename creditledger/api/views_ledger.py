"""The ledger's verification endpoints: the signed history, and proofs out of the tree.

A platform or an auditor holding a checkpoint (size S, root R, signed) checks that an entry
is in it with an inclusion proof, and that a newer checkpoint extends it with a consistency
proof; both are RFC 9162 proofs, read from the stored tiles in O(log n) (docs/api.md shows
the client side). Only sealed entries are in the tree.
"""

from __future__ import annotations

import base64

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from creditledger.api.openapi import RETRY_AFTER, errors
from creditledger.api.serializers_read import (
    CheckpointPageSerializer,
    CheckpointSerializer,
    CheckpointsQuerySerializer,
    ConsistencyProofSerializer,
    ConsistencyQuerySerializer,
    InclusionProofSerializer,
    InclusionQuerySerializer,
)
from creditledger.exceptions import Conflict
from creditledger.ledger import selectors

BEYOND_TREE = "The tree has not reached this size yet (`tree_size` holds its size)."


def _b64(hashes) -> list[str]:
    return [base64.b64encode(h).decode("ascii") for h in hashes]


def _within_tree(field: str, value: int) -> None:
    size = selectors.tree_size()
    if value > size:
        # A size this ledger has not reached (yet): 409, naming the size it has.
        raise Conflict(
            f"must be at most the tree size ({size}), got {value}",
            field=field,
            code="beyond_tree",
            value=value,
            extra={"tree_size": size},
        )


class CheckpointListView(APIView):
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


class InclusionProofView(APIView):
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
        _within_tree("size", size)
        leaf = selectors.leaf_hash(seq)
        proof = selectors.inclusion_proof(seq=seq, size=size)
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


class ConsistencyProofView(APIView):
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
        _within_tree("new", new)
        response = Response(
            {"old": old, "new": new, "proof": _b64(selectors.consistency_proof(old=old, new=new))}
        )
        response["Cache-Control"] = "public, max-age=86400, immutable"
        return response
