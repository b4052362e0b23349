"""Medical records analysis: sharing charts with specialists (more of MAR lands here)."""
