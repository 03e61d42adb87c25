"""What each route accepts, as pydantic models: every key typed and ranged, none unknown (`extra="forbid"`), no
coercion (`strict`: "3" is not 3). FastAPI checks each body against its model and writes /openapi.json from them;
`explain` turns the first thing a request got wrong into one sentence."""

import difflib
import json
import typing
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Texts = Annotated[str | Annotated[list[str], Field(min_length=1)], Field(union_mode="left_to_right")]
Unknown = Literal["error", "skip"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    model: str | None = Field(None, description="A served model's name; may be left out when one is served.")


class SampleRequest(Strict):
    prime: str = Field("", description="Text the sample continues (repeated at the start of the answer).")
    length: int = Field(500, ge=0, description="Characters to draw.")
    temperature: float = Field(1.0, ge=0, allow_inf_nan=False, description="0 takes the most likely character.")
    top_k: int = Field(0, ge=0, description="Draw from the k most likely characters (0: all).")
    top_p: float = Field(1.0, gt=0, le=1, description="Draw from the smallest set whose probability reaches p.")
    seed: int | None = Field(None, ge=0, description="The same seed gives the same text.")
    stop: str | Annotated[list[str], Field(max_length=4)] = Field(
        "", description="End after writing this string (or any of these), which the text keeps."
    )
    stream: bool = Field(False, description="Server-sent events of the text's pieces as they are drawn.")
    unknown: Unknown = "error"


class ScoreRequest(Strict):
    texts: Texts
    per_line: bool = False
    sort: Literal["none", "asc", "desc"] = "none"
    unknown: Unknown = "error"


class ClassifyRequest(Strict):
    inputs: Texts
    top_k: int = Field(1, ge=1)
    unknown: Unknown = "error"


class TagRequest(Strict):
    inputs: Texts
    unknown: Unknown = "error"


class TranslateRequest(Strict):
    inputs: Texts
    beam: int = Field(1, ge=1)
    n_best: int = Field(1, ge=1)
    length_penalty: float = Field(1.0, allow_inf_nan=False)
    unknown: Unknown = "error"


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    include_usage: bool = Field(False, description="A last chunk with the usage, before [DONE].")


class CompletionRequest(Strict):
    """OpenAI's legacy completions request; a token is a character. Null means the default, as OpenAI's does."""

    prompt: str | Annotated[list[str], Field(min_length=1)] | None = Field("", description="One choice each.")
    max_tokens: int | None = Field(16, ge=0, description="Characters to draw for each choice.")
    temperature: float | None = Field(1.0, ge=0, allow_inf_nan=False)
    top_p: float | None = Field(1.0, gt=0, le=1)
    top_k: int | None = Field(0, ge=-1, description="An extension (as vLLM's and llama.cpp's); 0 or -1: all.")
    seed: int | None = Field(None, ge=0, description="Choice i draws what seed + i gives alone.")
    n: int | None = Field(1, ge=1, description="Choices for each prompt.")
    stop: str | Annotated[list[str], Field(max_length=4)] | None = Field(
        None, description="End a choice before the first of these it writes (not included)."
    )
    stream: bool | None = False
    echo: bool | None = Field(False, description="Repeat the prompt before each choice's text.")
    logprobs: int | None = Field(None, ge=0, le=20, description="Log-probabilities and this many alternatives.")
    stream_options: StreamOptions | None = None
    unknown: Unknown = Field("error", description='An extension: "skip" leaves out characters never seen.')
    user: str | None = Field(None, description="Accepted and ignored.")
    # OpenAI's options charrnn does not do: accepted only with their neutral values, which some clients always send
    best_of: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    suffix: str | None = None


def stop_strings(stop: str | list[str] | None) -> tuple[str, ...]:
    """The stop strings of a request, as one string or a list of them (empty ones mean none)."""
    return tuple(s for s in ([stop] if isinstance(stop, str) else stop or ()) if s)


# Keys of one dialect sent to the other, or to OpenAI's routes that charrnn has no use for: said by name.
SYNONYMS = {
    "/v1/sample": {"prompt": "prime", "max_tokens": "length", "n": None, "echo": None, "logprobs": None},
    "/v1/completions": {"prime": "prompt", "length": "max_tokens", "num_samples": "n"},
}
SHAPES = {
    "texts": "a string or a non-empty list of strings",
    "inputs": "a string or a non-empty list of strings",
    "prompt": "a string or a non-empty list of strings",
    "stop": "a string or a list of up to 4 strings",
}
KINDS = {
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "string": "a string",
    "str": "a string",
    "list": "a list",
}


def unknown_key(key: str, route: str, schema: type[BaseModel]) -> str:
    """The sentence for a key the route does not take: its closest known key, or the route that takes it."""
    known = list(schema.model_fields)
    synonyms = SYNONYMS.get(route, {})
    closest = synonyms.get(key) or next(iter(difflib.get_close_matches(key, known, n=1, cutoff=0.6)), None)
    hint = f"; did you mean `{closest}`?" if closest else f"; it takes {', '.join(f'`{k}`' for k in known)}."
    if route == "/v1/sample" and key in CompletionRequest.model_fields:
        hint += " (or use /v1/completions)" if closest else " Or use /v1/completions, which does."
    return f"`{key}` is not a key of {route}{hint}"


def nested(schema: type[BaseModel], key: str) -> type[BaseModel]:
    """The model of an object-valued key (`stream_options`: StreamOptions)."""
    annotation = schema.model_fields[key].annotation
    return next(
        arg
        for arg in (*typing.get_args(annotation), annotation)
        if isinstance(arg, type) and issubclass(arg, BaseModel)
    )


def explain(error: dict[str, Any], route: str, schema: type[BaseModel]) -> tuple[str, str | None]:
    """One sentence for a pydantic error of a request body, and the key it is about (None: the whole body)."""
    kind, loc, context = error["type"], [part for part in error["loc"] if part != "body"], error.get("ctx") or {}
    if kind == "json_invalid":
        return f"the request body is not valid JSON ({context.get('error', 'it does not parse')}).", None
    if not loc or not isinstance(loc[0], str):
        return 'the request body must be a JSON object, e.g. {"model": "NAME", ...}.', None
    key = loc[0]
    got = json.dumps(error.get("input"), default=str)
    got = got if len(got) <= 60 else got[:57] + "..."
    if kind == "extra_forbidden" and len(loc) > 1:  # inside an object, such as stream_options
        return unknown_key(str(loc[-1]), f"{route}'s `{key}`", nested(schema, key)), key
    if kind == "extra_forbidden":
        return unknown_key(key, route, schema), key
    if kind == "missing":
        return f"`{key}` is needed.", key
    if key in SHAPES and (len(loc) > 1 or kind.endswith("_type")):
        return f"`{key}` must be {SHAPES[key]} (got {got}).", key
    bounds = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}
    if kind in bounds:
        (limit,) = context.values()
        return f"`{key}` must be {bounds[kind]} {limit:g} (got {got}).", key
    if kind == "literal_error":
        return f"`{key}` must be {context.get('expected')} (got {got}).", key
    if kind == "finite_number":
        return f"`{key}` must be a finite number (got {got}).", key
    what = next((words for prefix, words in KINDS.items() if kind.startswith(prefix)), None)
    if what:
        return f"`{key}` must be {what} (got {got}).", key
    return f"`{key}` is not right: {error.get('msg', kind)} (got {got}).", key
