"""The settings of one run: every parameter's value, checked, and the typed configurations the steps use.

Built one level above the parameter table (:mod:`edge_audio.parameters`, a leaf): the table says what each
parameter is and checks its type; :class:`Settings` holds one run's values and derives the typed configurations
(features, synthetic data, training, protocol, budgets, search, output layout) from them, and :meth:`Settings.check`
is the one place where a whole run's parameters are validated together before anything runs.

The modules the configurations come from (torch, Optuna and the rest behind them) are imported when a
configuration is first asked for, so the command line starts, and rejects a bad argument, in a fraction of a
second.
"""
from __future__ import annotations

import copy
from typing import Any

from .errors import ParameterError
from .parameters import PARAMETERS, book_values, chapter_parameters, check_names
from .paths import OutputLayout, check_output_folder, default_output_dir, resolve_path


#: Parameters whose value may name a selection the run resolves (the property of the same name gives what it holds).
RESOLVED = ("methods",)


class Settings:
    """The values of every parameter for one run, checked: defaults from the table, overridden by ``values``.

    Attribute access by parameter name (``settings.epochs``); the typed configurations the steps use are derived
    properties (``features``, ``synth``, ``train``, ``protocol``, ``budgets``, ``search``), so an invalid
    combination fails with a :class:`ParameterError` as soon as it is asked for.
    """

    def __init__(self, **values: Any):
        check_names(values)
        merged = {name: p.default for name, p in PARAMETERS.items()} | values
        self._values = {name: PARAMETERS[name].validate(value) for name, value in merged.items()}

    @classmethod
    def of_chapter(cls, chapter: str, namespace: dict[str, Any]) -> "Settings":
        """The settings of chapter ``chapter`` from its namespace (the values its ``parameters`` cell, and
        papermill's injected cell, assigned); the parameters the chapter does not declare keep their defaults."""
        names = [p.name for p in chapter_parameters(chapter)]
        missing = [name for name in names if name not in namespace]
        if missing:
            raise ParameterError(f"chapter {chapter} does not define {', '.join(missing)}; regenerate its parameters "
                                 "cell with scripts/sync_parameters.py")
        return cls(**{name: namespace[name] for name in names})

    @classmethod
    def book(cls, **overrides: Any) -> "Settings":
        """The book values, overridden by ``overrides``."""
        check_names(overrides)
        return cls(**(book_values() | overrides))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # not a parameter; and unpickling (a Ray job's settings) asks before _values is set
            raise AttributeError(name)
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"no parameter {name!r}") from None

    def __repr__(self) -> str:
        changed = {n: v for n, v in self._values.items() if v != PARAMETERS[n].default}
        return f"Settings({', '.join(f'{n}={v!r}' for n, v in changed.items())})"

    def replace(self, **changes: Any) -> "Settings":
        """A copy with ``changes`` applied."""
        return Settings(**(self._values | changes))

    def as_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self._values)

    def table(self, chapter: str):
        """The parameters chapter ``chapter`` ran with, as a table: each one's value in this run and what it
        means (what the book shows instead of the generated parameters cell, whose values papermill overrides)."""
        import html

        import pandas as pd

        def shown(name: str) -> str:  # a selection the run resolved shows what it stood for
            value = self._values[name]
            if name in RESOLVED and value != getattr(self, name):
                return f"{value!r}: {', '.join(map(str, getattr(self, name)))}"
            return repr(value)

        return pd.DataFrame([{"parameter": p.name, "value": f"<code>{html.escape(shown(p.name))}</code>",
                              "meaning": p.meaning} for p in chapter_parameters(chapter)]).set_index("parameter")

    def check(self) -> "Settings":
        """Check every setting derived from the values (features, training, protocol, budgets, search, model
        configs, methods, profiles, the dataset path) as the chapters will use them, so that a user error stops a
        run before any chapter starts; returns ``self``."""
        from .data import detect_layout
        from .models import spec_from_config
        from .quantize import check_methods
        from .targets import check_profiles

        for derived in ("features", "synth", "train", "protocol", "budgets", "search", "supernet_profiles", "boards"):
            getattr(self, derived)
        names = [spec_from_config(config)["name"] for config in self.model_configs]
        unknown = [] if isinstance(self.distill_students, int) else [
            s for s in self.distill_students if s not in names]
        if unknown:
            raise ParameterError(f"distill_students {unknown} are not in model_configs ({', '.join(names)})")
        check_methods(self.methods, self.calibration_method)
        if self.profiles is not None:
            check_profiles(self.profiles)
        if self.dataset_path is not None:
            detect_layout(resolve_path(self.dataset_path))
        check_output_folder(default_output_dir() if self.output_dir is None else resolve_path(self.output_dir))
        if self.storage:
            from .workers import check_storage

            check_storage(self.storage)
        if self.executor == "ray":
            from .executor import check_cluster, parse_address

            if self.ray_address is not None:
                parse_address(self.ray_address)
            check_cluster(self.ray_address, self.layout.root,
                          None if self.dataset_path is None else resolve_path(self.dataset_path))
        return self

    @property
    def threads(self) -> int:
        """The threads every job computes with (``job_threads``; None: torch's choice in this process, the
        machine's cores)."""
        if self.job_threads is not None:
            return self.job_threads
        import torch

        return torch.get_num_threads()

    # -- the typed configurations the steps use ------------------------------------------------------------------
    @property
    def methods(self) -> list[str]:
        """The quantization methods this run compresses with: the names given, or those of the registry's
        selection named (:func:`edge_audio.quantize.selection`)."""
        from .quantize import selection

        return selection(self._values["methods"])

    @property
    def features(self):
        from .features import FeatureConfig

        return FeatureConfig(sample_rate=self.sample_rate, duration=self.duration, n_mels=self.n_mels,
                             n_fft=self.n_fft, hop_length=self.hop_length)

    @property
    def training_seeds(self) -> list[int]:
        """The seeds every model is trained with (the first one's models are the ones deployed and compared)."""
        return list(self.seeds) if self.seeds else [self.seed]

    @property
    def searches(self) -> list[int]:
        """The seeds each search runs with."""
        return list(self.search_seeds) if self.search_seeds else [self.seed]

    @property
    def synth(self):
        from .synth import SynthConfig

        return SynthConfig(seed=self.seed, generator=self.synth_generator,
                           clips_per_class_per_fold=self.synth_clips_per_class_per_fold,
                           eval_clips_per_class_per_fold=self.synth_eval_clips_per_class_per_fold)

    @property
    def dataset_identity(self) -> str:
        """Which dataset this run is on, as the output folder records it (:func:`edge_audio.paths.check_dataset_of`):
        a real dataset's path, or the synthetic dataset's settings (its folder name under ``data/``)."""
        if self.dataset_path is not None:
            return f"the dataset at {resolve_path(self.dataset_path)}"
        return f"the embedded synthetic UrbanSound8K ({self.synth.folder_name})"

    @property
    def train(self):
        from .train import TrainConfig

        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.learning_rate, seed=self.seed)

    @property
    def protocol(self):
        """The fold protocol (the ``protocol`` parameter names its kind: ``settings.protocol.kind``)."""
        from .train import Protocol

        return Protocol(self._values["protocol"])

    @property
    def budgets(self):
        from .targets import Budgets

        budgets = Budgets(self.max_size_mb, self.max_latency_ms, self.min_accuracy, self.max_ram_kb,
                          self.max_flash_kb)
        return budgets if self.target_device is None else budgets.for_device(self.deployment_profiles[
            self.target_device])

    @property
    def deployment_profiles(self) -> dict:
        """The profiles of this run (``profiles``, or the built-in ones), typed and checked
        (:func:`edge_audio.targets.check_profiles`); ``target_device`` must name one."""
        from .targets import DEPLOYMENT_PROFILES, check_profiles

        profiles = check_profiles(DEPLOYMENT_PROFILES if self.profiles is None else self.profiles)
        if self.target_device is not None and self.target_device not in profiles:
            raise ParameterError(f"target_device {self.target_device!r} is not a deployment profile; choose one of "
                                 f"{', '.join(profiles)}")
        return profiles

    @property
    def boards(self) -> list[str]:
        """The emulated boards ``emulated_boards`` names (checked against :data:`edge_audio.firmware.boards.BOARDS`)."""
        from .firmware.boards import BOARDS

        unknown = [name for name in self.emulated_boards if name not in BOARDS]
        if unknown:
            raise ParameterError(f"emulated_boards {unknown} are not emulated boards; choose among {', '.join(BOARDS)}")
        return list(self.emulated_boards)

    @property
    def supernet_profiles(self) -> list:
        """The deployment profiles ``nas_profiles`` names (each gets a finalist of the supernet search)."""
        profiles = self.deployment_profiles
        unknown = [name for name in self.nas_profiles if name not in profiles]
        if unknown:
            raise ParameterError(f"nas_profiles {unknown} are not deployment profiles; choose among "
                                 f"{', '.join(profiles)}")
        return [profiles[name] for name in self.nas_profiles]

    @property
    def search(self):
        """The search's configuration. An Ethos-U target device searches 8-bit weights only (of
        ``nas_weight_bits``): Vela does not compile 4-bit weights, so a 4-bit candidate could never be deployed."""
        from .nas import SearchConfig

        weight_bits = tuple(self.nas_weight_bits)
        if self.target_device is not None and self.deployment_profiles[self.target_device].npu is not None:
            weight_bits = tuple(bits for bits in weight_bits if bits == 8)
            if not weight_bits:
                raise ParameterError(f"target_device {self.target_device} is an Ethos-U NPU, which Vela compiles "
                                     f"8-bit weights for; nas_weight_bits {list(self.nas_weight_bits)} has no 8")
        return SearchConfig(population=self.nas_population, generations=self.nas_generations,
                            proxy_epochs=self.proxy_epochs, proxy_train_folds=self.proxy_train_folds,
                            n_mels_choices=tuple(self.nas_n_mels), weight_bits=weight_bits,
                            top_k=self.top_k, seed=self.seed,
                            threads=self.latency_threads)

    @property
    def layout(self):
        return OutputLayout.at(self.output_dir)
