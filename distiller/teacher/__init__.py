"""The test teacher: a DEVELOPMENT TOOL that imitates an OpenAI-compatible LLM server.

It answers taxonomy and question requests with valid, varied, deterministic content in several
languages, and injects latency and faults on demand, so the engine, its tests and its benchmark
run against real HTTP and the real `openai` client without any real provider. Never point a
production deployment at it: its "questions" are template sentences.
"""
