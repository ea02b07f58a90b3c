"""Host port regression (verif/tb_host.py) under each simulator."""
import pytest

from verif.rtl_build import run_cocotb


@pytest.mark.rtl
def test_host_port(sim):
    run_cocotb(sim, "verif.tb_host", testcase="registers_and_refusals")
    run_cocotb(sim, "verif.tb_host", testcase="bulk_stream_load")


@pytest.mark.rtl
def test_queue_stream_load(sim):
    run_cocotb(sim, "verif.tb_host", testcase="queue_stream_load")


@pytest.mark.rtl
@pytest.mark.default_sims("verilator")          # 105 s under Icarus (measured): make sweep
def test_stream_idle_and_backpressure(sim):
    run_cocotb(sim, "verif.tb_host", testcase="stream_idle_and_backpressure")
