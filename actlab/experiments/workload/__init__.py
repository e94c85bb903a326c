"""The workload: tasks (data + model family + default recipe), datasets, model builders, recipes."""
