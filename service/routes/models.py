"""The models resource: describe the served models (their evaluation: `routes.log_evidence`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException

from service.dependencies import EvaluatorDep, SettingsDep, require_token
from service.evaluation import Evaluator, UnknownModel
from service.routes.log_evidence import ERRORS, ModelName
from service.schemas import Limits, ModelInfo, ModelsResponse

router = APIRouter(prefix="/v1", tags=["models"], dependencies=[Depends(require_token)])


def _info(name: str, evaluator: Evaluator) -> ModelInfo:
    description = evaluator.model(name).describe()
    return ModelInfo(
        name=name, ready=evaluator.engine.model_ready(name), state=evaluator.engine.model_state(name),
        gradient=evaluator.engine.gradient, buckets=list(evaluator.engine.buckets[name]),
        compiled_buckets=list(evaluator.engine.compiled_buckets(name)),
        dropped_buckets=list(evaluator.engine.dropped_buckets[name]),
        working_memory_bytes=evaluator.engine.working_memory(name), **description,
    )


@router.get("/models", summary="The served models, their parameters, priors and dataset")
async def list_models(
    evaluator: EvaluatorDep,
    settings: SettingsDep,
) -> ModelsResponse:
    return ModelsResponse(
        models=[_info(name, evaluator) for name in evaluator.engine.models],
        limits=Limits(
            max_request_points=settings.max_request_points,
            max_body_bytes=settings.max_body_bytes,
            max_batch_size=settings.max_batch_size,
            buckets=list(settings.buckets),
        ),
    )


@router.get("/models/{name}", summary="One served model", responses={404: ERRORS[404]})
async def get_model(name: ModelName, evaluator: EvaluatorDep) -> ModelInfo:
    try:
        return _info(name, evaluator)
    except UnknownModel as error:
        raise HTTPException(404, str(error)) from None
