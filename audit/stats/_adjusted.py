"""Regression-adjusted disparity: a logistic model, then the marginal risk difference by standardisation.

The model is ``logit P(y = 1) = b0 + b1 [group] + sum_j covariate dummies``:

- a logistic GLM when each sample is its own unit (classification errors), with
  a cluster-robust covariance when a cluster column is given anyway;
- a GEE with image clusters (exchangeable or independence working
  correlation, robust sandwich covariance) for misses of people who share
  images (detection, segmentation).

The gap is the *marginal* risk difference (g-computation): the model's mean
predicted probability with everyone analysed set to the group, minus the same
with everyone set to the reference. Its standard error is the delta method on
the model's covariance ``V``::

    grad = mean(pA (1 - pA) X_A) - mean(pB (1 - pB) X_B),  Var = grad' V grad

as Stata's ``margins`` and R's ``marginaleffects`` compute it by default, that
is conditional on the analysed people's covariates. The delta method was
chosen over a cluster bootstrap because a GEE fit takes a third of a second on
5,000 people on this kind of machine, so a thousand refits would take minutes
per comparison, while the robust covariance already accounts for the images.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

__all__ = ["REGRESSION_MODELS", "COV_STRUCTS", "design_matrix", "marginal_risk_difference"]

REGRESSION_MODELS = ("auto", "glm", "gee", "none")
# our name -> the statsmodels.cov_struct class (looked up when a model is fitted: statsmodels is imported lazily)
COV_STRUCTS = {"exchangeable": "Exchangeable", "independence": "Independence"}
# |log odds ratio| of the group beyond which the group separates the outcome and the delta method is meaningless
SEPARATION_LOGIT = 15.0


def design_matrix(in_group, covariates: pd.DataFrame) -> pd.DataFrame:
    """Intercept, the 0/1 group column and one dummy per covariate level but the first observed."""
    columns = [pd.Series(1.0, index=covariates.index, name="const"),
               pd.Series(np.asarray(in_group, dtype=float), index=covariates.index, name="group")]
    for name in covariates.columns:
        levels = pd.Categorical(covariates[name].astype(str))
        dummies = pd.get_dummies(levels.remove_unused_categories(), prefix=name, prefix_sep="=",
                                 drop_first=True, dtype=float)
        dummies.index = covariates.index
        columns.append(dummies)
    return pd.concat(columns, axis=1)


def fit_model(y, design: pd.DataFrame, *, model: str, cluster=None, cov_struct: str = "exchangeable"):
    """Fit the logistic GLM or GEE; returns statsmodels' results (``params``, ``cov_params()``)."""
    import statsmodels.api as sm  # lazy (see audit.stats)

    family = sm.families.Binomial()
    if model == "gee":
        structure = getattr(sm.cov_struct, COV_STRUCTS[cov_struct])()
        return sm.GEE(y, design, groups=cluster, family=family, cov_struct=structure).fit()
    if cluster is not None:
        return sm.GLM(y, design, family=family).fit(cov_type="cluster", cov_kwds={"groups": cluster})
    return sm.GLM(y, design, family=family).fit()


def marginal_risk_difference(y, in_group, covariates: pd.DataFrame, *, cluster=None, model: str = "glm",
                             cov_struct: str = "exchangeable", confidence: float = 0.95) -> dict:
    """Regression-adjusted marginal risk difference of the group against the reference.

    Parameters
    ----------
    y : array of 0/1
    in_group : array of bool
        True for the compared group, False for the reference.
    covariates : DataFrame
        Nominal covariates (binned), one column each.
    cluster : array, optional
        Cluster (image) ids; required for ``model="gee"``.
    model : {"glm", "gee"}
    cov_struct : {"exchangeable", "independence"}
        The GEE working correlation.

    Returns
    -------
    dict
        ``gap``, ``se``, ``lower``, ``upper``, ``p_value``, ``risk_group``,
        ``risk_reference`` (standardised risks), ``model`` and ``notes``
        (why a figure is NaN or doubtful).
    """
    from scipy.stats import norm  # lazy (see audit.stats)
    nan = float("nan")
    out = {"gap": nan, "se": nan, "lower": nan, "upper": nan, "p_value": nan, "risk_group": nan,
           "risk_reference": nan, "model": model, "notes": []}
    y = np.asarray(y, dtype=float)
    in_group = np.asarray(in_group, dtype=bool)
    if y.size == 0 or in_group.all() or not in_group.any():
        out["notes"].append("regression: both groups are needed")
        return out
    if y.min() == y.max():
        out["notes"].append(f"regression: every outcome is {int(y[0])}, so the logistic model has no finite fit")
        return out
    design = design_matrix(in_group, covariates.reset_index(drop=True))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fit_model(y, design, model=model, cluster=cluster, cov_struct=cov_struct)
    trouble = sorted({type(w.message).__name__ for w in caught
                      if "Separation" in type(w.message).__name__ or "Convergence" in type(w.message).__name__})
    if trouble:
        out["notes"].append(f"regression: statsmodels warned ({', '.join(trouble)}); some covariate level "
                            "may have a single outcome")
    from scipy.special import expit  # lazy (see audit.stats): `audit report` imports this module, never fits

    beta = np.asarray(result.params, dtype=float)
    x_group, x_reference = design.to_numpy(copy=True), design.to_numpy(copy=True)
    x_group[:, 1], x_reference[:, 1] = 1.0, 0.0
    p_group, p_reference = expit(x_group @ beta), expit(x_reference @ beta)
    gap = float(p_group.mean() - p_reference.mean())
    out.update(gap=gap, risk_group=float(p_group.mean()), risk_reference=float(p_reference.mean()))
    if not np.isfinite(beta[1]) or abs(beta[1]) > SEPARATION_LOGIT:
        out["notes"].append("regression: the group separates the outcome (one of them has no error in the "
                            "analysed strata), so the model gives no interval; see the Mantel-Haenszel figures")
        return out
    gradient = ((p_group * (1 - p_group)) @ x_group - (p_reference * (1 - p_reference)) @ x_reference) / y.size
    variance = float(gradient @ np.asarray(result.cov_params(), dtype=float) @ gradient)
    if not (np.isfinite(variance) and variance > 0):
        out["notes"].append("regression: the delta-method variance is 0 or undefined")
        return out
    se = float(np.sqrt(variance))
    z = norm.ppf(0.5 + confidence / 2)
    out.update(se=se, lower=max(-1.0, gap - z * se), upper=min(1.0, gap + z * se),
               p_value=float(2 * norm.sf(abs(gap) / se)))
    return out
