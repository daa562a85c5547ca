"""Build a classifier, its weights and its evaluation transform from a model card.

Model sources (``model`` in the card):

``architecture``
    A torchvision registry name, built by :func:`build_torchvision`: with a
    weights enum ``get_model(name, weights=Enum, **builder)`` (torchvision's
    own enum path), else ``get_model(name, weights=None, num_classes=...,
    **builder)``; ``builder`` is the card's checked builder arguments
    (:mod:`audit.core.model_spec`).
``torchscript``
    A TorchScript file loaded with :func:`torch.jit.load`.
``entry_point``
    ``"package.module:function"`` imported with :mod:`importlib`; the function
    is called with ``num_classes=`` when it accepts that keyword, else with
    no arguments, and the card's ``builder`` arguments where its task allows
    them (:func:`audit.core.model_spec.entry_point_arguments`); it must return
    an :class:`torch.nn.Module`.

Weights (``weights`` in the card):

``enum``
    A torchvision weights enum (``"ResNet18_Weights.IMAGENET1K_V1"``) resolved
    with :func:`torchvision.models.get_weight`; torchvision's builder reads its
    state dict from the torch hub cache (``$TORCH_HOME/hub/checkpoints``) or
    downloads it when a network is there, and its ``transforms()`` are the
    evaluation transform.
``path``
    A local checkpoint: a state dict, or a mapping with a ``state_dict`` /
    ``model_state_dict`` entry. It is loaded with
    ``torch.load(weights_only=True)`` so that no code inside it can run; only
    when the card sets ``trust_checkpoint: true`` is ``weights_only=False``
    allowed (which also allows a whole pickled ``nn.Module``).

Every failure caused by the card or its files raises
:class:`~audit.errors.ModelError`, and so does an exception in the model's
``forward()`` once :func:`guard_forward` wraps it (one line naming the card
and its model; the original exception is chained for ``--traceback``).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
from pathlib import Path

import torch

from ..card_update import card_bytes
from .cards import ModelCard
from ..errors import ModelError

__all__ = [
    "GuardedModel", "build_model", "build_torchvision", "build_transform", "fetch_weights_enum", "fingerprint_model",
    "guard_forward", "load_checkpoint", "load_torchscript", "model_origin", "preprocessing_transform", "select_device",
]


def select_device(override: str | None = None) -> torch.device:
    """Pick the device to run on: ``override`` if given, else cuda, then mps, then cpu.

    Raises
    ------
    ModelError
        The requested device is unknown or not available.
    """
    if override:
        kind = override.split(":")[0]
        if kind not in ("cpu", "cuda", "mps"):
            raise ModelError(f"device: expected cpu, cuda or mps, found '{override}'")
        if kind == "cuda" and not torch.cuda.is_available():
            raise ModelError(f"device: '{override}' requested but CUDA is not available on this machine")
        if kind == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise ModelError(f"device: '{override}' requested but MPS is not available on this machine")
        return torch.device(override)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if hasattr(torch.backends, "mps") and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _load_checkpoint(card: ModelCard, path: Path):
    if not path.is_file():
        raise ModelError(f"{card.path}: field 'weights.path': weights file not found: {path}")
    return load_checkpoint(path, trust=card.trust_checkpoint)


def load_checkpoint(path: Path, *, trust: bool = False):
    """``torch.load`` a checkpoint on the CPU; only tensors and plain containers unless ``trust``.

    Raises
    ------
    ModelError
        The file cannot be read, or (without ``trust``) it holds pickled objects
        other than tensors, which ``weights_only=True`` refuses to run.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust)
    except Exception as exc:  # noqa: BLE001 - torch.load raises many types
        if not trust and "weights_only" in str(exc):
            raise ModelError(
                f"{path}: refused to load a checkpoint that contains objects other than tensors "
                "(torch.load weights_only=True); set 'trust_checkpoint: true' in the model card "
                "only if you trust where this file came from"
            ) from None
        raise ModelError(f"{path}: cannot load checkpoint: {_one_line(exc)}") from None


def checkpoint_state_dict(card: ModelCard | None, loaded, path: Path):
    """The state dict inside a loaded checkpoint (``card`` is unused; kept for callers)."""
    if isinstance(loaded, torch.nn.Module):
        return loaded  # only reachable with trust_checkpoint: true
    if isinstance(loaded, dict):
        for key in ("state_dict", "model_state_dict", "model"):
            if key in loaded and isinstance(loaded[key], dict):
                loaded = loaded[key]
                break
        if all(isinstance(v, torch.Tensor) for v in loaded.values()):
            # Checkpoints saved from DataParallel / DDP prefix every key.
            if loaded and all(k.startswith("module.") for k in loaded):
                loaded = {k[len("module."):]: v for k, v in loaded.items()}
            return loaded
    raise ModelError(f"{path}: expected a state dict (parameter name -> tensor), found {type(loaded).__name__}")


def fetch_weights_enum(name: str, *, where: str) -> dict:
    """The state dict of the torchvision weights enum ``name`` (``"ResNet18_Weights.IMAGENET1K_V1"``).

    Fetching needs the network or torch hub's cache; a failure, or a name
    torchvision does not know, is a :class:`ModelError` starting with ``where``.
    """
    import torchvision.models

    try:
        enum = torchvision.models.get_weight(name)
    except Exception:  # noqa: BLE001 - torchvision raises several kinds here
        raise ModelError(f"{where}: expected a torchvision weights enum such as "
                         f"'ResNet18_Weights.IMAGENET1K_V1', found '{name}'") from None
    try:
        return enum.get_state_dict(progress=False, check_hash=True)
    except Exception as exc:  # noqa: BLE001 - URLError, HTTPError, RuntimeError...
        raise ModelError(
            f"{where}: cannot fetch weights '{name}' "
            f"(no network and not in the torch hub cache?): {_one_line(exc)}"
        ) from None


def build_from_card(card: ModelCard, *, build_architecture) -> torch.nn.Module:
    """Construct the network a model card describes and load its weights, for any task.

    Parameters
    ----------
    card : ModelCard
        A validated model card.
    build_architecture : callable
        ``build_architecture(card, state) -> nn.Module`` for ``model.architecture``
        sources: builds the task's network (:func:`build_torchvision`), with
        the enum's weights when the card names one. ``state`` is the card's
        local ``weights.path`` state dict (or None), read first so that the
        builder can fit the network to it (an fcn/deeplab checkpoint with an
        ``aux_classifier``); it is loaded here afterwards. TorchScript files and
        entry points are handled here, as is a local checkpoint, loaded with
        ``weights_only=True`` unless the card trusts it.

    Returns
    -------
    torch.nn.Module
        In eval mode, on the CPU.

    Raises
    ------
    ModelError
        The model cannot be built or its weights cannot be loaded.
    """
    source = card.model
    weights = card.weights
    loaded = None
    if weights is not None and weights.path is not None:
        loaded = checkpoint_state_dict(card, _load_checkpoint(card, weights.path), weights.path)
    if source.kind == "architecture":
        model = build_architecture(card, None if isinstance(loaded, torch.nn.Module) else loaded)
    elif source.kind == "torchscript":
        model = load_torchscript(card)
    else:
        model = _from_entry_point(card)

    if isinstance(loaded, torch.nn.Module):
        model = loaded
    elif loaded is not None:
        _load_state(card, model, loaded, weights.path)
    return model.eval()


def load_torchscript(card: ModelCard) -> torch.nn.Module:
    """The card's ``model.torchscript`` file, loaded on the CPU. Raises ModelError."""
    path = card.model.torchscript
    if not path.is_file():
        raise ModelError(f"{card.path}: field 'model.torchscript': file not found: {path}")
    try:
        return torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"{path}: cannot load TorchScript model: {_one_line(exc)}") from None


def _fetch_failed(exc: BaseException) -> bool:
    """Whether an exception raised while a builder ran came from fetching the weights (not from building)."""
    return isinstance(exc, OSError) or "hash" in str(exc).lower() or "download" in str(exc).lower()


def build_torchvision(card: ModelCard, *, without_weights: dict | None = None) -> torch.nn.Module:
    """A torchvision registry model for a card with ``model.architecture``, the card's ``builder`` arguments passed.

    With ``weights.enum`` this is torchvision's own enum path:
    ``get_model(name, weights=Enum, **builder)``, which sets the class count
    from the enum's categories, builds the layers those weights were trained
    with (frozen batch norm, an auxiliary head) and loads the state dict from
    the torch hub cache (``$TORCH_HOME/hub/checkpoints``), downloading it when
    it is not there and a network is. Without an enum nothing is downloaded:
    ``get_model(name, weights=None, num_classes=..., **without_weights, **builder)``.

    Raises
    ------
    ModelError
        One line naming the card field: the weights cannot be fetched, the
        builder rejects an argument, or the weights do not fit.
    """
    import torchvision.models

    name = card.model.architecture
    builder = dict(card.builder or {})
    enum_name = card.weights.enum if card.weights is not None and card.weights.enum else None
    try:
        if enum_name:
            enum = torchvision.models.get_weight(enum_name)
            return torchvision.models.get_model(name, weights=enum, **builder)
        kwargs = {"weights": None, "num_classes": card.num_classes, **(without_weights or {}), **builder}
        return torchvision.models.get_model(name, **kwargs)
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - torchvision and torch.hub raise many types
        text = _one_line(exc)
        if enum_name and _fetch_failed(exc):
            raise ModelError(
                f"{card.path}: field 'weights.enum': cannot fetch weights '{enum_name}' "
                f"(no network and not in the torch hub cache?): {text}"
            ) from None
        if enum_name and "state_dict" in text:
            raise ModelError(f"{card.path}: field 'weights.enum': weights '{enum_name}' do not fit "
                             f"'{name}' built with the card's builder arguments: {text[:300]}") from None
        field_name = "builder" if builder and isinstance(exc, TypeError) else "model.architecture"
        raise ModelError(f"{card.path}: field '{field_name}': cannot build '{name}'"
                         f"{' with ' + ', '.join(f'{k}={v!r}' for k, v in builder.items()) if builder else ''}: "
                         f"{text[:300]}") from None


def _torchvision_classifier(card: ModelCard, state=None) -> torch.nn.Module:
    return build_torchvision(card)


def build_model(card: ModelCard) -> torch.nn.Module:
    """Construct the classifier a model card describes and load its weights (see :func:`build_from_card`)."""
    return build_from_card(card, build_architecture=_torchvision_classifier)


def _load_state(card: ModelCard, model: torch.nn.Module, state, origin) -> None:
    try:
        model.load_state_dict(state, strict=True)
    except Exception as exc:  # noqa: BLE001
        text = _one_line(exc)
        raise ModelError(
            f"{origin}: weights do not fit the model of {card.path}: {text[:300]}"
        ) from None


def model_origin(card: ModelCard) -> str:
    """The card field that names the model: ``model.entry_point 'pkg.mod:fn'`` and the like."""
    src = card.model
    value = {"architecture": src.architecture, "torchscript": src.torchscript, "entry_point": src.entry_point}[src.kind]
    return f"model.{src.kind} '{value}'"


class GuardedModel(torch.nn.Module):
    """A model whose ``forward`` failures become one-line :class:`ModelError` s naming the card and model.

    The original exception is chained (``raise ... from``), so ``audit run
    --traceback`` shows where in the user's code it happened.
    """

    def __init__(self, inner: torch.nn.Module, where: str):
        super().__init__()
        self.inner = inner
        self.where = where

    def forward(self, *args, **kwargs):
        try:
            return self.inner(*args, **kwargs)
        except ModelError:
            raise
        except Exception as exc:  # noqa: BLE001 - the user's model code failed
            raise ModelError(f"{self.where}: forward() failed: {type(exc).__name__}: {_one_line(exc)[:300]} "
                             "(--traceback shows where)") from exc


def guard_forward(net: torch.nn.Module, card: ModelCard) -> GuardedModel:
    """Wrap ``net`` so that an exception in its ``forward`` is a one-line ModelError naming the card's model."""
    return GuardedModel(net, f"{card.path}: {model_origin(card)}")


def _on_import_path(card: ModelCard) -> None:
    """Put the card's folder first on ``sys.path``, so that an entry point beside the card imports."""
    import sys

    folder = str(Path(card.path).resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
        importlib.invalidate_caches()


def _from_entry_point(card: ModelCard) -> torch.nn.Module:
    spec = card.model.entry_point
    module_name, _, attr = spec.partition(":")
    _on_import_path(card)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"{card.path}: field 'model.entry_point': cannot import '{module_name}': {_one_line(exc)}") from None
    target = module
    for part in attr.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise ModelError(f"{card.path}: field 'model.entry_point': '{module_name}' has no attribute '{attr}'")
    if not callable(target):
        raise ModelError(f"{card.path}: field 'model.entry_point': '{spec}' is not callable")
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        params = {}
    accepts = "num_classes" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
    arguments = {k: _beside(card, v) for k, v in (card.builder or {}).items()}
    try:
        model = target(num_classes=card.num_classes, **arguments) if accepts else target(**arguments)
    except Exception as exc:  # noqa: BLE001 - the user's model code failed
        raise ModelError(f"{card.path}: field 'model.entry_point': calling '{spec}' failed: {_one_line(exc)}") from None
    if not isinstance(model, torch.nn.Module):
        raise ModelError(
            f"{card.path}: field 'model.entry_point': expected '{spec}' to return a torch.nn.Module, "
            f"found {type(model).__name__}"
        )
    return model


def _beside(card: ModelCard, value):
    """A builder argument of an entry point: a string naming a file relative to the card becomes its path."""
    from .._fingerprint import named_file

    found = named_file(card, value)
    return str(found) if found is not None else value


def build_transform(card: ModelCard):
    """The evaluation transform: the weights enum's ``transforms()`` or the card's preprocessing.

    Returns
    -------
    callable
        Maps an RGB PIL image to a normalised ``(3, H, W)`` float tensor.
    """
    if card.preprocessing is None:
        import torchvision.models

        return torchvision.models.get_weight(card.weights.enum).transforms()
    return preprocessing_transform(card.preprocessing)


def preprocessing_transform(pre):
    """Resize to ``pre.resize``, convert to a tensor, normalise with ``pre.mean`` / ``pre.std``."""
    from torchvision import transforms as T

    return T.Compose(
        [
            T.Resize(list(pre.resize), antialias=True),
            T.ToTensor(),
            T.Normalize(mean=list(pre.mean), std=list(pre.std)),
        ]
    )


def fingerprint_model(card: ModelCard, *, _seen: frozenset = frozenset()) -> str:
    """SHA-256 of what determines the model's predictions.

    Covers the model card bytes, the weights file bytes, the TorchScript file
    bytes, any other file the card's ``model`` block (or an entry point's
    ``builder`` arguments) names and, for an entry
    point, what :func:`audit._fingerprint.entry_point_identity` lists (its
    module file, its distribution's name and version, its package's files);
    for a weights enum the enum name (already part of the card). A named file
    that is itself a model card (a model built from others) adds that card's
    fingerprint, weights included.

    When an entry point cannot be fingerprinted, a :class:`UserWarning` says so
    and the hash includes a fresh random value, so nothing cached is reused.
    """
    import uuid
    import warnings

    from .._fingerprint import card_named_files, entry_point_identity

    digest = hashlib.sha256()
    digest.update(card_bytes(card.path))  # without the sections `audit run --update-model-card` writes
    files = []
    if card.weights is not None and card.weights.path is not None:
        files.append(card.weights.path)
    if card.model.torchscript is not None:
        files.append(card.model.torchscript)
    named = [f for f in card_named_files(card) if f not in files]
    files += named
    seen = _seen | {Path(card.path).resolve()}
    for sub in (_model_card_or_none(f) for f in named if f.suffix.lower() == ".md" and f.resolve() not in seen):
        if sub is not None:
            digest.update(b"\0card\0" + fingerprint_model(sub, _seen=seen).encode())
    if card.model.entry_point is not None:
        _on_import_path(card)  # the card's folder: its entry point's module may sit beside it
        facts, more, problem = entry_point_identity(card.model.entry_point)
        files += more
        for fact in facts:
            digest.update(b"\0fact\0" + fact.encode())
        if problem is not None:
            warnings.warn(f"{card.path}: field 'model.entry_point': {problem}; its predictions are not cached",
                          UserWarning, stacklevel=2)
            digest.update(b"\0untrusted\0" + uuid.uuid4().bytes)
    for file in files:
        digest.update(b"\0file\0")
        try:
            with open(file, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
        except FileNotFoundError:
            raise ModelError(f"{card.path}: file not found: {file}") from None
    return digest.hexdigest()


def _model_card_or_none(path):
    """The model card at ``path``, or None when it is not one (a data card, a note)."""
    from ..errors import CardError
    from .card_loaders import load_model_card

    try:
        return load_model_card(path)
    except CardError:
        return None
