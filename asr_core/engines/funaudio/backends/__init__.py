"""Where the LLM decodes: transformers in this process (CPU or GPU) or an SGLang server (GPU)."""
