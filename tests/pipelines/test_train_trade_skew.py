"""No skew between how a model is trained and how it is judged and traded: the agent learns with the
research costs and the model strategy's entry threshold, the ones the walk-forward evaluation, the
strategy selection and the runtime use."""

import polars as pl

from xray_core.learning.dataset import FEATURES
from xray_core.learning.models.registry import build_model
from xray_core.strategies import get_strategy
from xray_pipelines.defs.learning.models import model_params, trained_with_news
from xray_pipelines.defs.research.backtests import backtest_config
from xray_pipelines.resources import ResearchResource


def test_the_agent_trains_with_the_research_costs_and_the_strategys_threshold():
    research = ResearchResource(fee=0.002, slippage=0.0015)
    costs = backtest_config(research)
    for size in ("test", "demo"):
        agent = build_model("rl", **model_params("rl", size, costs))
        assert (agent.config.fee, agent.config.slippage) == (0.002, 0.0015)
        assert agent.config.backtest.fee == costs.fee and agent.config.backtest.slippage == costs.slippage
        assert agent.config.long_above == get_strategy("model").params().long_above == 0.55
    assert "slippage" not in model_params("gbm", "demo", costs)  # classifiers learn P(up), not trading


def test_a_model_is_marked_as_trained_with_news_only_when_its_rows_had_some():
    quiet = pl.DataFrame({name: [0.0, 0.0, float("nan")] for name in FEATURES})
    assert not trained_with_news(quiet)  # "no news" reads 0 (NaN: a warm-up row)
    assert trained_with_news(quiet.with_columns(pl.Series("mkt_sent_decayed", [0.0, -0.3, 0.0])))
