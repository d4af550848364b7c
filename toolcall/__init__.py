"""Tool calling: a safe calculator, tools with JSON-schema arguments and one executor (registry), the embedded
world's tools (world), and reading tool calls out of generated text (parse)."""
