"""Command-line parameter types shared by the ``leadscore`` commands."""

from __future__ import annotations

from typing import Any

import click

from ml_core.errors import ModelNotFoundError
from ml_core.identifiers import MODEL_NAME_RULE, model_name


class ModelName(click.ParamType):
    """A model name, checked before any command touches the models directory or Redis."""

    name = "model"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return model_name(value)
        except ModelNotFoundError:
            self.fail(f"{value!r} is not a model name: {MODEL_NAME_RULE}", param, ctx)


MODEL = ModelName()
