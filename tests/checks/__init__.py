"""Tests of the exercise checks (pocket_parallel/checks/), one module per check module."""
