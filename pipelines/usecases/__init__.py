"""What a person or a schedule asks Tailor to do, written once: the CLI, the Prefect flows and the
web console call these, never the registry or a step's internals directly."""
