"""The statistics engine: disaggregated metrics, intervals, disparities and tests.

Pure numpy, pandas and scipy/statsmodels: no torch, no files. Every task
reduces its predictions to per-sample sufficient statistics; this package does
all grouping, resampling and testing on them.

``scipy`` and ``statsmodels`` are imported inside the functions that use them
(``# lazy (see audit.stats)``), not at module level: ``import audit.stats``
loads numpy and pandas only, and a command that computes no interval or test
never pays for ``scipy.stats`` (``tests/test_stats_imports.py``).
"""

from ._bootstrap import cluster_bootstrap, cluster_weights, multinomial_bootstrap
from ._compare import compare_results
from ._compare_bootstrap import SampleStats
from ._compare_outcome import Comparison
from ._compare_policy import ComparePolicy, metric_direction
from ._composition import (
    box_geometry,
    compare_composition,
    composition,
    composition_sentence,
    cooccurrence,
    missing_rates,
    reference_fit,
    summarise_by_group,
)
from ._engine import DEFAULT_DISPARITY_METRICS, audit_classification
from ._ratios import audit_ratio_metrics
from ._segmentation import (
    IOU_THRESHOLDS,
    POOLING,
    audit_segmentation,
    person_region_counts,
    person_size_bins,
    person_statistics,
    segmentation_counts,
    segmentation_statistics,
)
from ._groups import SEPARATOR, UNKNOWN, Attribute, AttributeValueError, bin_attribute, build_groups
from ._intervals import percentile_interval, proportion_interval
from ._rates import CLASS_METRICS, DESCRIPTIONS, OVERALL_METRICS, RATE_METRICS, confusion_cells, rate_components
from ._names import METRIC_DISPLAY, display_name, is_event, is_proportion, lower_is_better, sentence_case, short_name
from ._results import GroupedMetrics, UndefinedMetricWarning, json_plain, json_records
from ._scores import calibration_bins, expected_calibration_error, roc_auc
from ._significance import adjust_p_values, permutation_range_test, two_proportion_test
from ._covariates import quantile_bins
from ._slices import SliceSearch, find_slices
from ._stratified import (
    AdjustedGap,
    OverlapWarning,
    SimpsonWarning,
    StratifiedAnalysis,
    explanation_sentence,
    stratified_disparity,
)
from ._summary import Finding, findings, method_line

__all__ = [
    "json_plain",
    "json_records",
    "is_event",
    "short_name",
    "sentence_case",
    "method_line",
    "lower_is_better",
    "is_proportion",
    "findings",
    "display_name",
    "Finding",
    "METRIC_DISPLAY",
    "Attribute",
    "AttributeValueError",
    "CLASS_METRICS",
    "ComparePolicy",
    "Comparison",
    "DEFAULT_DISPARITY_METRICS",
    "DESCRIPTIONS",
    "GroupedMetrics",
    "IOU_THRESHOLDS",
    "OVERALL_METRICS",
    "POOLING",
    "RATE_METRICS",
    "SEPARATOR",
    "SampleStats",
    "UNKNOWN",
    "UndefinedMetricWarning",
    "adjust_p_values",
    "audit_classification",
    "audit_ratio_metrics",
    "audit_segmentation",
    "bin_attribute",
    "box_geometry",
    "build_groups",
    "calibration_bins",
    "cluster_bootstrap",
    "cluster_weights",
    "compare_composition",
    "compare_results",
    "composition",
    "composition_sentence",
    "confusion_cells",
    "cooccurrence",
    "expected_calibration_error",
    "metric_direction",
    "missing_rates",
    "multinomial_bootstrap",
    "percentile_interval",
    "permutation_range_test",
    "person_region_counts",
    "person_size_bins",
    "person_statistics",
    "proportion_interval",
    "rate_components",
    "reference_fit",
    "roc_auc",
    "segmentation_counts",
    "segmentation_statistics",
    "summarise_by_group",
    "two_proportion_test",
    "AdjustedGap",
    "OverlapWarning",
    "SimpsonWarning",
    "SliceSearch",
    "StratifiedAnalysis",
    "explanation_sentence",
    "find_slices",
    "quantile_bins",
    "stratified_disparity",
]
