"""MLflow's tracking API over our store: the fluent functions, MlflowClient and MLflow-shaped entities."""
