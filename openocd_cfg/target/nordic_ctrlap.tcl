# SPDX-License-Identifier: Apache-2.0
#
# Nordic CTRL-AP helpers shared by target/nrf52840.cfg and target/nrf5340.cfg (written for
# qspi-gdb). They work below the core, through the DAP only, so they also work on a chip whose
# access-port protection (APPROTECT) keeps OpenOCD from examining the core.
#
# CTRL-AP registers (nRF52840 PS / nRF5340 PS, "CTRL-AP"): RESET 0x000, ERASEALL 0x004,
# ERASEALLSTATUS 0x008 (0 = ready), IDR 0x0FC (nRF52840 0x02880000, nRF5340 0x12880000).
# Lines starting with "qspi-gdb-" are read by qspi-gdb; keep their format.

# The DAP's register value as a number (`apreg` answers with text that ends in a newline).
proc qspi_gdb_apreg {ap reg} {
	set dap [[target current] cget -dap]
	return [expr {[string trim [$dap apreg $ap $reg]] + 0}]
}

# ERASEALL through the CTRL-AP `ap`: erases the internal flash, UICR and RAM of its core and
# opens its access port until the next reset (the external QSPI flash is not touched). Waits
# up to timeout_ms, then pulses the CTRL-AP's RESET. Prints one line:
#   qspi-gdb-eraseall: ap=N ok ms=T | ap=N timeout ms=T | ap=N not-a-ctrl-ap idr=0x...
proc qspi_gdb_ctrl_ap_eraseall {ap timeout_ms} {
	set dap [[target current] cget -dap]
	set idr [qspi_gdb_apreg $ap 0xfc]
	if {$idr != 0x02880000 && $idr != 0x12880000} {
		echo [format "qspi-gdb-eraseall: ap=%d not-a-ctrl-ap idr=0x%08x" $ap $idr]
		return
	}
	$dap apreg $ap 0x004 0
	$dap apreg $ap 0x004 1
	set started [ms]
	while {[qspi_gdb_apreg $ap 0x008] != 0} {
		if {[ms] - $started > $timeout_ms} {
			$dap apreg $ap 0x004 0
			echo [format "qspi-gdb-eraseall: ap=%d timeout ms=%d" $ap [expr {[ms] - $started}]]
			return
		}
		sleep 10
	}
	set took [expr {[ms] - $started}]
	$dap apreg $ap 0x004 0
	$dap apreg $ap 0x000 1
	$dap apreg $ap 0x000 0
	echo [format "qspi-gdb-eraseall: ap=%d ok ms=%d" $ap $took]
}

# Read AP registers: `qspi_gdb_apregs {ap reg ap reg ...}` prints one line per pair,
#   qspi-gdb-apreg: ap=N reg=0xRR value=0xVVVVVVVV   (or error instead of value=)
# Read only registers without side effects (IDR, CSW, TAR, CTRL-AP status registers; not DRW).
proc qspi_gdb_apregs {pairs} {
	foreach {ap reg} $pairs {
		if {[catch {set value [qspi_gdb_apreg $ap $reg]}]} {
			echo [format "qspi-gdb-apreg: ap=%d reg=0x%02x error" $ap $reg]
		} else {
			echo [format "qspi-gdb-apreg: ap=%d reg=0x%02x value=0x%08x" $ap $reg $value]
		}
	}
}

# After a failed examine: say so to a person, and to qspi-gdb with one line
#   qspi-gdb-approtect: core=application ap=N
proc qspi_gdb_report_approtect {chip core ap how} {
	echo "****** WARNING ******"
	echo "$chip $core core has access port protection (APPROTECT) engaged ($how)."
	echo "Debug access is denied. Unlock with 'qspi-gdb recover' (or '${chip}_recover'),"
	echo "which erases the internal flash, UICR and RAM (not the external QSPI flash)."
	echo ""
	echo "qspi-gdb-approtect: core=$core ap=$ap"
	poll off
}
