"""From a protocol's names to ready components and trained pipelines (see ``factories`` and ``models``)."""

from bench.pipeline.factories import attack_eps_grid, build_model, check_protocol, make_attack, make_dataset, make_defense
from bench.pipeline.models import (SURROGATE_DEFENSE, SURROGATE_SEED_OFFSET, DataSplit, ReadyModel, Settings, base_chain,
                                   checkpoint_folder, is_randomized, load_data, obtain_model, obtain_surrogate, parse_device,
                                   surrogate_seed, trained_models, training_key)

__all__ = ["SURROGATE_DEFENSE", "SURROGATE_SEED_OFFSET", "DataSplit", "ReadyModel", "Settings", "attack_eps_grid", "base_chain", "build_model",
           "check_protocol", "checkpoint_folder", "is_randomized", "load_data", "make_attack", "make_dataset", "make_defense",
           "obtain_model", "obtain_surrogate", "parse_device", "surrogate_seed", "trained_models", "training_key"]
