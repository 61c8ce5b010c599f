"""The audit's checks, in report order. A new check is a module here and one line below."""

from __future__ import annotations

from bertdemo.audit.checks.base import Check, Context, Figure, Gate, Outcome, Table
from bertdemo.audit.checks.classifier import ClassifierFairness
from bertdemo.audit.checks.crows_pairs import CrowsPairs
from bertdemo.audit.checks.stereoset import StereoSet
from bertdemo.audit.checks.templates import TemplateProbes
from bertdemo.audit.checks.user_data import UserDataFairness

REGISTRY: dict[str, Check] = {c.name: c for c in (CrowsPairs(), StereoSet(), TemplateProbes(), ClassifierFairness(),
                                                  UserDataFairness())}

__all__ = ["REGISTRY", "Check", "Context", "Figure", "Gate", "Outcome", "Table"]
