"""The dry run's time estimate (flash/estimate.py over the probe table, inputs/probes.py): each
part follows from cited constants, and the probe it assumes is named."""

from __future__ import annotations

import random

import pytest

from qspi_gdb.flash.estimate import (
    BUFFER_BYTES,
    DAP_PER_CALL,
    choose_profile,
    estimate,
    qspi_read_s,
)
from qspi_gdb.flash.plan import plan
from qspi_gdb.inputs.detect import apply_chip
from qspi_gdb.inputs.flash_config import build_config
from qspi_gdb.inputs.image import image_from_segments
from qspi_gdb.inputs.probes import CMSIS_DAP_HS, JLINK_OB, PROFILES, WIRE_ONLY


def test_word_cost_per_profile_from_its_constants():
    # CMSIS-DAP HS: 46 SWD clocks at 4 MHz, a 0.2 ms packet per 101 transfers plus the
    # firmware's check transfer after a packet ending in a write
    assert CMSIS_DAP_HS.word_s() == pytest.approx(46 / 4e6 + (0.2e-3 + 46 / 4e6) / 101)
    # J-Link OB: 46 + 8 idle clocks; per 256 transactions 1 ms + the bit buffers over USB FS
    bits = 256 * 54 + 8
    usb = 1e-3 + (4 + 2 * -(-bits // 8) + -(-bits // 8) + 1) / 1e6
    assert JLINK_OB.word_s() == pytest.approx(54 / 4e6 + (usb + 8 / 4e6) / 256)
    assert WIRE_ONLY.word_s() == pytest.approx(46 / 4e6)
    # what those mean: ~290 kB/s and ~100 kB/s of payload
    assert 280e3 < 4 / CMSIS_DAP_HS.word_s() < 300e3
    assert 100e3 < 4 / JLINK_OB.word_s() < 110e3


def test_estimate_of_512_kib_on_the_dk_part():
    cfg = apply_chip(build_config("nrf5340dk"))  # MX25R6435F, assumed
    data = random.Random(5).randbytes(512 << 10)
    the_plan = plan(image_from_segments([(0x10000, data)], xip_base=cfg.xip_base), cfg)
    est = estimate(the_plan, cfg, JLINK_OB, "test")
    word = JLINK_OB.word_s()
    call = DAP_PER_CALL * word  # a stop's mailbox traffic; no poll wait (halted by request)
    assert est.call_s == pytest.approx(call)
    assert est.transfer_s == pytest.approx((512 << 10) // 4 * word)
    assert est.flash_busy_s == pytest.approx(the_plan.erase_typ_s + the_plan.program_typ_s)
    # 8 block erases (one call each), 16 buffers of 32 KiB, the final wait; one CRC_LIST call
    # before, one verify call after
    assert (512 << 10) // BUFFER_BYTES == 16
    assert est.calls == 8 + 16 + 1 + 1 + 1
    assert est.write_s == pytest.approx(max(est.flash_busy_s, est.transfer_s + 25 * call))
    assert est.read_s == pytest.approx(qspi_read_s(512 << 10, cfg) + call)
    assert est.total_s == pytest.approx(est.read_s + est.write_s + est.verify_s)
    assert 5 < est.total_s < 15  # the DK part's SFDP times dominate: ~8 s
    text = est.text()
    assert text.startswith(f"estimated time: {est.total_s:.1f} s with a jlink-ob probe (test)")


def test_force_and_chip_erase_skip_the_crc_pass():
    cfg = apply_chip(build_config("nrf5340dk"))
    image = image_from_segments([(0, bytes(8192))], xip_base=cfg.xip_base)
    with_crc = estimate(plan(image, cfg), cfg, CMSIS_DAP_HS)
    without = estimate(plan(image, cfg, force=True), cfg, CMSIS_DAP_HS, crc_check=False)
    assert with_crc.read_s > without.read_s == 0.0


@pytest.mark.parametrize("probe,virtual,name,reason", [
    (None, False, "jlink-ob", "the DK's on-board J-Link"),
    ("jlink", False, "jlink-ob", "--interface jlink"),
    ("cmsis-dap", False, "cmsis-dap-hs", "--interface cmsis-dap"),
    ("stlink", False, "cmsis-dap-hs", "assumed: no profile for --interface stlink"),
    ("gdb-server", False, "cmsis-dap-hs", "assumed: the GDB server's probe is unknown"),
    ("jlink-ob", True, "jlink-ob", "as asked"),
    (None, True, "cmsis-dap-hs", None),
])
def test_the_profile_assumed_is_named(probe, virtual, name, reason):
    profile, why = choose_profile(probe, virtual=virtual)
    assert profile is PROFILES[name]
    assert why == reason if reason else "virtual board" in why
