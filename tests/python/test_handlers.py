"""The handler registry and the built-in sample_task."""

from __future__ import annotations

import sys
import uuid

import pytest
from jobqueue import HandlerRegistry, Job, default_registry, handler
from jobqueue.handlers import SampleTaskFailed, split_module_list


def make_job(parameters: dict, job_type: str = "sample_task") -> Job:
    return Job(uuid.uuid4(), 1, job_type, uuid.uuid4(), parameters, 0)


def test_sample_task_echoes_its_message_and_fails_when_asked():
    sample = default_registry.get("sample_task")
    assert sample is not None

    assert sample(make_job({"message": "hi", "duration_ms": 1})) == {"echo": "hi"}
    assert sample(make_job({})) == {"echo": None}
    with pytest.raises(SampleTaskFailed, match="fail=true"):
        sample(make_job({"fail": True}))


def test_the_decorator_registers_and_returns_the_function():
    registry = HandlerRegistry()

    @registry.handler("resize_image")
    def resize(job: Job) -> None:
        return None

    assert registry.get("resize_image") is resize
    assert "resize_image" in registry and registry.names() == ["resize_image"]


def test_a_second_handler_for_the_same_type_is_refused():
    registry = HandlerRegistry({"a": print})

    registry.register("a", print)  # the same function again: fine (a re-import)
    with pytest.raises(ValueError, match="already has a handler"):
        registry.register("a", repr)


def test_load_module_takes_decorated_functions_and_a_handlers_dict(tmp_path, monkeypatch):
    (tmp_path / "shop_jobs.py").write_text(
        "import jobqueue\n"
        "@jobqueue.handler('shop_invoice')\n"
        "def invoice(job):\n"
        "    return {'invoice': job.parameters['order']}\n"
        "def ship(job):\n"
        "    return None\n"
        "HANDLERS = {'shop_ship': ship}\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = HandlerRegistry()
    try:
        registry.load_module("shop_jobs")
        fn = default_registry.get("shop_invoice")
        assert fn is not None and fn(make_job({"order": 7}, "shop_invoice")) == {"invoice": 7}
        assert registry.get("shop_ship") is sys.modules["shop_jobs"].ship
    finally:
        default_registry.unregister("shop_invoice")
        sys.modules.pop("shop_jobs", None)


def test_a_handlers_attribute_that_is_not_a_dict_is_refused(tmp_path, monkeypatch):
    (tmp_path / "odd_jobs.py").write_text("HANDLERS = ['not', 'a', 'dict']\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with pytest.raises(TypeError, match="HANDLERS"):
            HandlerRegistry().load_module("odd_jobs")
    finally:
        sys.modules.pop("odd_jobs", None)


def test_the_handlers_environment_variable_is_comma_separated():
    assert split_module_list(" a.b, c ,,") == ["a.b", "c"]
    assert split_module_list(None) == []


def test_the_module_level_decorator_uses_the_default_registry():
    @handler("registry_probe")
    def probe(job: Job) -> int:
        return 1

    try:
        assert default_registry.get("registry_probe") is probe
    finally:
        default_registry.unregister("registry_probe")
