"""Command-line parameter types shared by the ``leadscore`` commands."""

from __future__ import annotations

from typing import Any

import click

from leadscore.settings import get_settings
from ml_core.errors import ModelNotFoundError
from ml_core.identifiers import MODEL_NAME_RULE, model_name
from ml_core.spec import available_models, spec_path


class ModelName(click.ParamType):
    """A model that has a spec: every command refuses an unknown one the same way (exit code 2),
    before it touches the models directory, Redis or a worker."""

    name = "model"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            name = model_name(value)
        except ModelNotFoundError:
            self.fail(f"{value!r} is not a model name: {MODEL_NAME_RULE}", param, ctx)
        models_dir = get_settings().models_dir
        if not spec_path(models_dir, name).is_file():
            known = ", ".join(available_models(models_dir)) or "none"
            self.fail(f"no model {name!r} in {models_dir} (models: {known})", param, ctx)
        return name


MODEL = ModelName()
