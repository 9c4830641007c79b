"""scripts/cost.py: the arithmetic, the counts from the templates, and docs/cost.md in step."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from cdk_app.config import AppConfig
from cdk_app.prices import PRICES
from scripts import cost, cost_inputs, cost_items
from scripts.assembly import StackTemplate, app_context, load_assembly, synthesize
from stacks.application import BuiltApp

GB = 1024**3
PERFORMANCE = cost_inputs.Performance(warm_ms=0.169, cold_init_ms=403.0, source="test")


def config(**overrides: Any) -> AppConfig:
    return AppConfig.from_context(app_context(overrides))


def items(found: Sequence[cost_items.Item]) -> dict[str, float]:
    return {i.name: i.usd for i in found}


@pytest.fixture(scope="session")
def stacks(built: BuiltApp) -> tuple[StackTemplate, ...]:
    return load_assembly(Path(built.app.outdir))


@pytest.fixture(scope="session")
def waf_assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    outdir = tmp_path_factory.mktemp("waf")
    synthesize(outdir, {"waf_enabled": "true"})
    return outdir


@pytest.fixture(scope="session")
def waf_stacks(waf_assembly: Path) -> tuple[StackTemplate, ...]:
    return load_assembly(waf_assembly)


@pytest.fixture(scope="session")
def default(stacks: tuple[StackTemplate, ...]) -> cost.Estimate:
    return cost.estimate(config(), stacks, performance=PERFORMANCE)


def test_alarms_are_counted_in_the_synthesized_templates(
    stacks: tuple[StackTemplate, ...],
) -> None:
    found = [
        (s.name.removeprefix("iris-ml-dev-"), r)
        for s in stacks
        for r in s.resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    ]
    # The canary's guard alarms (api) and CloudFront's (cdn-monitoring) count too.
    assert {stack for stack, _ in found} == {"api", "cdn-monitoring", "observability"}
    alarms = [alarm for _, alarm in found]
    inventory = cost_inputs.inventory(stacks)
    assert inventory.alarms == len(alarms)
    # A rate alarm's math evaluates two metrics; CloudWatch bills each.
    metrics = sum(
        max(1, sum("MetricStat" in m for m in a["Properties"].get("Metrics", []))) for a in alarms
    )
    assert inventory.alarm_metrics == metrics > inventory.alarms

    grown = [copy.deepcopy(dict(s.template)) for s in stacks]
    grown[0]["Resources"]["Extra"] = {"Type": "AWS::CloudWatch::Alarm", "Properties": {}}
    more = cost_inputs.inventory(
        [StackTemplate(s.name, s.region, t) for s, t in zip(stacks, grown, strict=True)]
    )
    assert (more.alarms, more.alarm_metrics) == (inventory.alarms + 1, metrics + 1)


def test_inventory_of_the_default_app(default: cost.Estimate) -> None:
    inventory = default.inventory
    assert (inventory.kms_keys, inventory.dashboards, inventory.secrets) == (2, 1, 1)
    assert (inventory.web_acls, inventory.waf_rules, inventory.nat_gateways) == (0, 0, 0)
    assert [(s.name, s.runs_per_month, s.memory_mb) for s in inventory.schedules] == [
        ("Monitor", 730 * 6, 256)  # rate(10 minutes)
    ]
    assert inventory.ami_lifecycle_keep == 3  # the trainer AMI lifecycle policy


def test_idle_month_for_the_defaults(default: cost.Estimate) -> None:
    idle = items(default.idle)
    assert idle["KMS keys (alarm topics)"] == pytest.approx(2.00)
    assert idle["CloudWatch alarms"] == pytest.approx(default.inventory.alarm_metrics * 0.10)
    assert idle["CloudWatch dashboard"] == pytest.approx(3.00)
    assert idle["Secrets Manager (origin key)"] == pytest.approx(0.40)
    assert idle["ECR images (20 + live, rollback)"] == pytest.approx(22 * 0.1 * 0.10)
    assert idle["Trainer AMI snapshots"] == pytest.approx(3 * 8 * 0.05)
    assert idle["AMI rebuilds (Image Builder)"] == pytest.approx(
        2 * 0.5 * (0.0725 + 30 * 0.08 / 730 + 0.005)
    )
    assert idle["Lambda, API GW, CloudFront, DynamoDB"] == 0.0
    assert "WAF web ACL" not in idle
    assert "Route 53 hosted zone" not in idle
    assert default.idle_total == pytest.approx(sum(idle.values()))
    assert 8 < default.idle_total < 11


def test_a_million_uncached_gets_for_the_defaults(default: cost.Estimate) -> None:
    kb = 1024 * 1_000_000 / GB  # a KB a request, a million times, in GB
    expected = {
        "CloudFront requests": 1.00,
        "CloudFront data out": 1.0 * kb * 0.085,
        "CloudFront logs in S3": 0.1 * kb * 0.023,
        "CloudFront to origin": 0.6 * kb * 0.020,
        "API Gateway HTTP API": 1.00,
        # At most one run per 5-minute cache period: 8,760 a month, 5 ms at 256 MB each.
        "Origin-lock authorizer": 8760 * (0.20 / 1_000_000 + 0.005 * 0.25 * 0.0000133334),
        "Lambda requests": 0.20,
        # 0.169 ms warm is billed as 1 ms, at 1 GB on arm64.
        "Lambda duration": 1_000_000 * 0.001 * 1.0 * 0.0000133334,
        "Lambda cold starts (init)": 1000 * 0.403 * 1.0 * 0.0000133334,
        # 1% sampled plus 6 an hour for one instance (4,380 of a million).
        "X-Ray traces": (0.01 + 6 * 730 / 1_000_000) * 5.00,
        # The app's line and EMF, the access log; Lambda's own lines are not logged.
        "CloudWatch Logs ingestion": (0.75 + 0.25) * kb * 0.50,
    }
    # The goal of the HTTP API, sampled tracing and trimmed logs (docs/api-choice.md).
    assert default.request_total("uncached GET") <= 3.00
    assert default.request_total("POST") <= 3.00
    assert items(default.requests["uncached GET"]) == pytest.approx(expected)
    assert default.request_total("uncached GET") == pytest.approx(sum(expected.values()))
    cached = items(default.requests["cached GET"])
    assert set(cached) == {"CloudFront requests", "CloudFront data out", "CloudFront logs in S3"}
    post = items(default.requests["POST"])
    assert post["CloudFront to origin"] == pytest.approx(0.7 * kb * 0.020)


def test_waf_adds_exactly_the_waf_items(
    default: cost.Estimate, waf_stacks: tuple[StackTemplate, ...]
) -> None:
    waf = cost.estimate(config(waf_enabled=True), waf_stacks, performance=PERFORMANCE)
    idle, base = items(waf.idle), items(default.idle)
    assert {k: v for k, v in idle.items() if k not in base} == {
        "WAF web ACL": 5.00,
        "WAF rules": 4 * 1.00,  # three managed rule groups and the rate limit
    }
    assert {k: v for k, v in idle.items() if k in base} == base
    for request in cost_items.REQUESTS:
        more = items(waf.requests[request])
        assert more.pop("WAF requests") == 0.60
        assert more == items(default.requests[request])


def test_memory_scales_the_lambda_gb_seconds(stacks: tuple[StackTemplate, ...]) -> None:
    small = cost.estimate(config(lambda_memory_mb=512), stacks, performance=PERFORMANCE)
    large = cost.estimate(config(lambda_memory_mb=2048), stacks, performance=PERFORMANCE)
    a, b = items(small.requests["POST"]), items(large.requests["POST"])
    assert b.pop("Lambda duration") == pytest.approx(4 * a.pop("Lambda duration"))
    assert b.pop("Lambda cold starts (init)") == pytest.approx(
        4 * a.pop("Lambda cold starts (init)")
    )
    assert a == b


def test_reserved_concurrency_costs_nothing(stacks: tuple[StackTemplate, ...]) -> None:
    # Reserved concurrency only caps the function; provisioned concurrency is what bills idle.
    none = cost.estimate(config(reserved_concurrency=0), stacks, performance=PERFORMANCE)
    many = cost.estimate(config(reserved_concurrency=100), stacks, performance=PERFORMANCE)
    for request in cost_items.REQUESTS:
        assert items(none.requests[request]) == items(many.requests[request])


def test_x86_64_costs_more_than_arm64(
    default: cost.Estimate, stacks: tuple[StackTemplate, ...]
) -> None:
    x86 = cost.estimate(
        config(architecture="x86_64", trainer_instance_types="c7i.large,m7i.large"),
        stacks,
        performance=PERFORMANCE,
    )
    arm_duration = items(default.requests["POST"])["Lambda duration"]
    x86_duration = items(x86.requests["POST"])["Lambda duration"]
    assert x86_duration / arm_duration == pytest.approx(0.0000166667 / 0.0000133334)
    assert items(x86.training)["EC2 Spot c7i.large"] == pytest.approx(0.08925 * 0.4 * 0.25)
    assert items(default.training)["EC2 Spot c7g.large"] == pytest.approx(0.0725 * 0.4 * 0.25)


def test_training_run(default: cost.Estimate) -> None:
    run = items(default.training)
    assert run["EBS gp3 root volume"] == pytest.approx(30 * 0.08 * 0.25 / 730)
    assert run["Public IPv4 address"] == pytest.approx(0.005 * 0.25)
    assert run["New model image in ECR"] == pytest.approx(0.1 * 0.10)
    assert 0.01 < default.training_total < 0.05


def test_sagemaker_comparison(default: cost.Estimate) -> None:
    rows = {c.name: (c.idle, c.per_million) for c in default.comparison}
    assert rows["SageMaker ml.t2.medium endpoint, 24/7"][0] == pytest.approx(0.056 * 730)
    assert rows["SageMaker ml.m5.large endpoint, 24/7"][0] == pytest.approx(0.115 * 730)
    assert rows["This app (uncached GET)"] == pytest.approx(
        (default.idle_total, default.request_total("uncached GET"))
    )


def test_an_instance_type_without_a_price_is_named(stacks: tuple[StackTemplate, ...]) -> None:
    with pytest.raises(ValueError, match=r"no price for c8g\.large .* PRICES"):
        cost.estimate(config(trainer_instance_types="c8g.large"), stacks, performance=PERFORMANCE)


def test_every_unit_price_has_its_source_and_date() -> None:
    for key, price in PRICES.items():
        assert price.usd > 0, key
        assert re.fullmatch(r"https://aws\.amazon\.com/[a-z0-9/-]+/", price.source), key
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", price.recorded), key
    for instance in config().trainer_instance_types:
        assert f"ec2:{instance}" in PRICES


def test_the_benchmarks_recorded_figures_are_read(tmp_path: Path) -> None:
    """Lambda time is priced from bench/results.json, the output of `make bench`."""
    measured = cost_inputs.bench_performance()
    assert 0 < measured.warm_ms < 10
    assert 0 < measured.cold_init_ms < 10_000
    assert measured.source == "bench/results.json"
    run = tmp_path / "results.json"
    run.write_text(
        json.dumps(
            {"figures": {"warm_post_p50_s": {"ours": 0.0025}, "cold_init_s": {"ours": 0.0012}}}
        )
    )
    assert cost_inputs.bench_performance(run) == cost_inputs.Performance(2.5, 1.2, str(run))
    run.write_text("{}")
    with pytest.raises(ValueError, match="run make bench"):
        cost_inputs.bench_performance(run)


def test_docs_match_the_script_for_the_defaults(stacks: tuple[StackTemplate, ...]) -> None:
    report = cost.format_estimate(cost.estimate(config(), stacks))
    doc = cost.DOC.read_text()
    assert cost.update_doc(doc, cost.doc_sections(report)) == doc, (
        "docs/cost.md is out of date: run python scripts/cost.py --update-doc"
    )
    assert "recorded on 2026-11-27" in doc
    assert "may have changed" in doc


def test_main_prints_the_report(
    built: BuiltApp, stacks: tuple[StackTemplate, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cost.main(["--assembly", built.app.outdir]) == 0
    assert capsys.readouterr().out == cost.format_estimate(cost.estimate(config(), stacks))
    assert cost.main(["--prices"]) == 0
    assert capsys.readouterr().out == cost.price_table()


def test_main_takes_context_overrides(
    waf_assembly: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assembly = str(waf_assembly)
    assert cost.main(["-c", "waf_enabled=true", "--assembly", assembly]) == 0
    out = capsys.readouterr().out
    assert "(cdk.json -c waf_enabled=true)" in out
    assert "WAF rules" in out
    with pytest.raises(SystemExit):
        cost.main(["-c", "waf_enabled=maybe", "--assembly", assembly])
