"""Loopback phone lab assets: SIPp phone scenarios (`scenarios/`) and a Kamailio trunk (`kamailio.cfg`)."""

from pathlib import Path

LAB_DIR = Path(__file__).resolve().parent
SCENARIOS_DIR = LAB_DIR / "scenarios"
KAMAILIO_CFG = LAB_DIR / "kamailio.cfg"
