"""Translate a text into eight languages at once with Claude's extended thinking: a program for the official client.

Written the way PocketFlow's parallel-batch cookbook (cookbook/pocketflow-parallel-batch in
The-Pocket/PocketFlow) calls Anthropic's API: one ``AsyncAnthropic`` per call, configured only
by ``ANTHROPIC_API_KEY`` and ``ANTHROPIC_BASE_URL``; ``messages.create`` with
``max_tokens=20000`` and ``thinking={"type": "enabled", "budget_tokens": 16000}``; the answer
read as ``response.content[1].text``, the text block after the thinking block; the eight
languages sent at once by an ``AsyncParallelBatchNode`` with ``max_retries=3``. Nothing in it
knows about pocket-parallel.

Usage: python translate_with_thinking.py TEXT_FILE OUTPUT_DIR
"""

import asyncio
import os
import sys

from anthropic import AsyncAnthropic
from pocketflow import AsyncFlow, AsyncParallelBatchNode

LANGUAGES = ["Chinese", "Spanish", "Japanese", "German", "Russian", "Portuguese", "French", "Korean"]


def prompt_for(text, language):
    return f"Translate to {language}: {text}"


async def call_llm(prompt):
    client = AsyncAnthropic(api_key=os.environ.get("ANTHROPIC_API_KEY"))
    response = await client.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=20000,
        thinking={"type": "enabled", "budget_tokens": 16000},
        messages=[{"role": "user", "content": prompt}],
    )
    return response.content[1].text


class TranslateAll(AsyncParallelBatchNode):
    async def prep_async(self, shared):
        return [(shared["text"], language) for language in shared["languages"]]

    async def exec_async(self, text_and_language):
        text, language = text_and_language
        translation = await call_llm(prompt_for(text, language))
        print(f"translated into {language}", flush=True)
        return language, translation

    async def post_async(self, shared, prep_res, exec_res_list):
        os.makedirs(shared["output_dir"], exist_ok=True)
        for language, translation in exec_res_list:
            with open(os.path.join(shared["output_dir"], f"{language}.md"), "w", encoding="utf-8") as file:
                file.write(translation)
        return "default"


async def main(text_file, output_dir):
    with open(text_file, encoding="utf-8") as file:
        shared = {"text": file.read(), "languages": LANGUAGES, "output_dir": output_dir}
    await AsyncFlow(start=TranslateAll(max_retries=3)).run_async(shared)
    print("all translations written", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
