"""Configuration validation, overrides, profiles and seeds."""

from __future__ import annotations

import pytest

from deeprx.config import PROFILES, ConfigError, LinkConfig, derive_seed, load_profile, parse_override


def test_invalid_values_name_field_value_and_range() -> None:
    with pytest.raises(ConfigError, match=r"link\.dmrs_symbols=3.*1 or 2"):
        LinkConfig(dmrs_symbols=3)
    with pytest.raises(ConfigError, match=r"link\.channel_models.*'CDL-Z'"):
        LinkConfig(channel_models=("CDL-Z",))
    with pytest.raises(ConfigError, match=r"link\.sinr_db"):
        LinkConfig(sinr_db=(30.0, 10.0))


def test_overrides_and_unknown_keys() -> None:
    cfg = load_profile("quick").with_overrides({"train.steps": 7, "link.channel_models": ["TDL-A"]})
    assert cfg.train.steps == 7 and cfg.link.channel_models == ("TDL-A",)
    with pytest.raises(ConfigError, match="unknown config key"):
        load_profile("quick").with_overrides({"train.nope": 1})
    with pytest.raises(ConfigError, match="model"):
        load_profile("quick").with_overrides({"model": "deeprx_nope"})
    assert parse_override("eval.target_ber=1e-3") == ("eval.target_ber", 1e-3)
    assert parse_override("link.modulation=256qam") == ("link.modulation", "256qam")


def test_profiles_are_valid_and_paper_is_256qam_26prb_full() -> None:
    for name in PROFILES:
        load_profile(name)
    paper = load_profile("paper")
    assert (paper.link.modulation, paper.link.n_subcarriers, paper.model) == ("256qam", 312, "deeprx_full")
    with pytest.raises(ConfigError, match="unknown profile"):
        load_profile("fast")


def test_round_trip_and_seed_derivation() -> None:
    cfg = load_profile("cpu")
    assert type(cfg).from_dict(cfg.to_dict()) == cfg
    assert derive_seed(0, "train", 5) == derive_seed(0, "train", 5)
    assert len({derive_seed(0, "train", 5), derive_seed(0, "train", 6), derive_seed(1, "train", 5)}) == 3


def test_the_modulation_follows_the_mcs_and_must_agree_with_it() -> None:
    base = load_profile("quick")
    assert not base.link.coded and base.link.mcs_index is None
    coded = base.with_overrides({"link.mcs_index": 14})  # TS 38.214 table 5.1.3.1-1: index 14 is 16-QAM
    assert coded.link.coded and coded.link.modulation == "16qam"
    assert base.with_overrides({"link.mcs_index": 20, "link.mcs_table": 2}).link.modulation == "256qam"  # table 2
    assert base.with_overrides({"link.mcs_index": 5}).link.modulation == "qpsk"  # indices 0-9 of table 1
    with pytest.raises(ConfigError, match=r"link\.modulation='16qam' disagrees with link\.mcs_index=20"):
        base.with_overrides({"link.mcs_index": 20, "link.mcs_table": 2, "link.modulation": "16qam"})
    with pytest.raises(ConfigError, match=r"link\.modulation='qpsk' disagrees"):
        LinkConfig(mcs_index=14, modulation="qpsk")
    with pytest.raises(ConfigError, match=r"link\.mcs_index=29"):
        base.with_overrides({"link.mcs_index": 29})
    with pytest.raises(ConfigError, match=r"link\.mcs_table=7"):
        base.with_overrides({"link.mcs_index": 3, "link.mcs_table": 7})
    with pytest.raises(ConfigError, match=r"link\.mcs_index='x'.*an integer"):
        base.with_overrides({"link.mcs_index": "x"})
