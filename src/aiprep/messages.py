"""Every sentence aiprep says to a person, in English and Chinese: one table, one lookup.

Question texts are bilingual in the bank; this is the app's own text (prompts, headings,
summaries, errors). ``--lang both`` speaks English. Cheap to import: no dependencies.
Keys are ``area.name``; values are ``str.format`` templates, the same placeholders in both
languages (tests/test_messages.py checks it).
"""

from __future__ import annotations

from typing import Final

from aiprep.lang import Lang

MESSAGES: Final[dict[str, dict[Lang, str]]] = {
    # -- counts ---------------------------------------------------------------------
    "count.question.one": {"en": "{n} question", "zh": "{n} 道题"},
    "count.question.other": {"en": "{n} questions", "zh": "{n} 道题"},
    "count.minute.one": {"en": "{n} minute", "zh": "{n} 分钟"},
    "count.minute.other": {"en": "{n} minutes", "zh": "{n} 分钟"},
    "count.day.one": {"en": "{n} day", "zh": "{n} 天"},
    "count.day.other": {"en": "{n} days", "zh": "{n} 天"},
    # -- the quiz -------------------------------------------------------------------
    "quiz.pick_all": {
        "en": "pick every right choice: one or several",
        "zh": "选出所有正确选项：可能一个，也可能多个",
    },
    "quiz.mc_prompt": {
        "en": "{span} pick [{chosen}] · Enter answer · {keys}",
        "zh": "{span} 选择 [{chosen}] · Enter 作答 · {keys}",
    },
    "quiz.none": {"en": "none", "zh": "无"},
    "quiz.open_prompt": {
        "en": "a type an answer · Enter reveal · {keys}",
        "zh": "a 输入答案 · Enter 显示答案 · {keys}",
    },
    "quiz.key.h": {"en": "h hint", "zh": "h 提示"},
    "quiz.key.r": {"en": "r run", "zh": "r 运行"},
    "quiz.key.p": {"en": "p practice", "zh": "p 练习"},
    "quiz.key.s": {"en": "s skip", "zh": "s 跳过"},
    "quiz.key.u": {"en": "u undo", "zh": "u 撤销"},
    "quiz.key.q": {"en": "q quit", "zh": "q 退出"},
    "quiz.skipped": {"en": "skipped", "zh": "已跳过"},
    "quiz.type": {"en": "your answer (an empty line ends it):", "zh": "你的答案（空行结束）："},
    "quiz.next": {"en": "any key for the next question", "zh": "按任意键进入下一题"},
    "quiz.last": {"en": "any key to continue", "zh": "按任意键继续"},
    "quiz.no_more_hints": {"en": "no more hints", "zh": "没有更多提示了"},
    "quiz.hint": {"en": "hint {i}/{n}:", "zh": "提示 {i}/{n}："},
    "quiz.no_solution": {
        "en": "this question has no runnable solution",
        "zh": "这道题没有可运行的参考实现",
    },
    "quiz.no_code": {"en": "this question has no code to practise", "zh": "这道题没有可练习的代码"},
    "quiz.exists": {"en": "{path} exists already (kept)", "zh": "{path} 已存在（未覆盖）"},
    "quiz.wrote": {"en": "wrote {path}", "zh": "已写入 {path}"},
    "quiz.check_with": {"en": "check it with: {command}", "zh": "用这条命令检查：{command}"},
    "quiz.correct": {
        "en": "[green]correct[/] — rated {rating}",
        "zh": "[green]正确[/]：评为 {rating}",
    },
    "quiz.wrong": {
        "en": "[red]not quite[/]: the answer is {answer} — rated {rating}",
        "zh": "[red]不对[/]：正确答案是 {answer}，评为 {rating}",
    },
    "quiz.your_answer": {"en": "your answer", "zh": "你的答案"},
    "quiz.reference": {"en": "reference answer", "zh": "参考答案"},
    "quiz.as_of": {"en": "as of {as_of}", "zh": "信息截至 {as_of}"},
    "quiz.key_points": {"en": "key points", "zh": "要点"},
    "quiz.tick": {
        "en": "tick the points you covered (1-{n}), Enter when done [{got}]",
        "zh": "勾选你答到的要点（1-{n}），完成后按 Enter [{got}]",
    },
    "quiz.covered": {"en": "covered {k}/{n} key points", "zh": "答到 {k}/{n} 个要点"},
    # the rating keys with the next interval each gives, like Anki's buttons
    "quiz.intervals": {"en": "next review in: {choices}", "zh": "下次复习：{choices}"},
    "quiz.rate": {
        "en": "rate: {choices} · Enter {suggested} (suggested) · q quit",
        "zh": "自评：{choices} · Enter {suggested}（建议）· q 退出",
    },
    "quiz.rate_short": {
        "en": "rate 1-4 · Enter {suggested} (suggested) · q quit",
        "zh": "自评 1-4 · Enter {suggested}（建议）· q 退出",
    },
    "quiz.rated": {"en": "rated [{style}]{rating}[/]", "zh": "评为 [{style}]{rating}[/]"},
    "quiz.undone": {
        "en": "undid the rating of {id}: it is asked again",
        "zh": "已撤销 {id} 的评分：重新作答",
    },
    "quiz.time_up": {"en": "[bold red]time is up[/]", "zh": "[bold red]时间到[/]"},
    "quiz.nothing": {
        "en": "nothing due and no new questions with these filters",
        "zh": "按这些条件筛选，没有到期的题，也没有新题",
    },
    "quiz.queue": {
        "en": "{total} question(s): {due} due, {new} new",
        "zh": "共 {total} 道题：{due} 道到期，{new} 道新题",
    },
    "quiz.again_now": {
        "en": "{n} question(s) due again now",
        "zh": "{n} 道题现在又到期了",
    },
    "quiz.session": {
        "en": "[bold]session:[/] answered {answered} · {ratings} · skipped {skipped}",
        "zh": "[bold]本次：[/]作答 {answered} · {ratings} · 跳过 {skipped}",
    },
    "quiz.next_due": {
        "en": "next due: {when} ({id}); progress saved",
        "zh": "下一道到期：{when}（{id}）；进度已保存",
    },
    "quiz.saved": {"en": "progress saved", "zh": "进度已保存"},
    # -- a question's kind, difficulty, and why a session asks it ----------------------
    "kind.concept": {"en": "concept", "zh": "概念"},
    "kind.multiple-choice": {"en": "multiple-choice", "zh": "选择题"},
    "kind.coding": {"en": "coding", "zh": "编程"},
    "kind.estimate": {"en": "estimate", "zh": "估算"},
    "kind.debug": {"en": "debug", "zh": "调试"},
    "difficulty.easy": {"en": "easy", "zh": "简单"},
    "difficulty.medium": {"en": "medium", "zh": "中等"},
    "difficulty.hard": {"en": "hard", "zh": "困难"},
    "label.due": {"en": "due", "zh": "到期"},
    "label.new": {"en": "new", "zh": "新题"},
    "label.again": {"en": "again", "zh": "再来一次"},
    "label.mock": {"en": "mock", "zh": "模拟面试"},
    # -- ratings (the words stay FSRS's: they are the keys' names) ---------------------
    "rating.1": {"en": "again", "zh": "again 重来"},
    "rating.2": {"en": "hard", "zh": "hard 困难"},
    "rating.3": {"en": "good", "zh": "good 良好"},
    "rating.4": {"en": "easy", "zh": "easy 简单"},
    # -- the mock interview -----------------------------------------------------------
    "mock.start": {
        "en": "mock interview: {questions} in {minutes}; q or Ctrl-C ends it",
        "zh": "模拟面试：{minutes}内 {questions}；按 q 或 Ctrl-C 结束",
    },
    "mock.title": {"en": "mock interview", "zh": "模拟面试"},
    "mock.col.question": {"en": "question", "zh": "题目"},
    "mock.col.kind": {"en": "kind", "zh": "题型"},
    "mock.col.time": {"en": "time", "zh": "用时"},
    "mock.col.hints": {"en": "hints", "zh": "提示"},
    "mock.col.rating": {"en": "rating", "zh": "评分"},
    "mock.skipped": {"en": "skipped", "zh": "跳过"},
    "mock.not_reached": {"en": "not reached", "zh": "未答到"},
    "mock.review_next": {"en": "[bold]review next:[/] {ids}", "zh": "[bold]接下来复习：[/]{ids}"},
    "mock.example": {"en": "  e.g. {command}", "zh": "  例如 {command}"},
    "mock.all_well": {
        "en": "[bold green]all answered well[/]: try a longer mock or harder questions",
        "zh": "[bold green]全部答得不错[/]：试试更长的模拟面试或更难的题",
    },
    "mock.none": {"en": "no questions match these filters", "zh": "没有符合这些条件的题"},
    # -- verify and hints ---------------------------------------------------------------
    "verify.recorded_good": {
        "en": "recorded a good review; {id} is next due {when}",
        "zh": "已记为 good；{id} 下次到期：{when}",
    },
    "verify.recorded_again": {
        "en": "recorded an again review; {id} is due again {when}",
        "zh": "已记为 again；{id} 再次到期：{when}",
    },
    "verify.next_hint": {
        "en": "next: `aiprep hint {id}` (hint {i} of {n}), or `aiprep show {id} --answer`",
        "zh": "下一步：`aiprep hint {id}`（第 {i}/{n} 条提示），或 `aiprep show {id} --answer`",
    },
    "verify.no_hint_left": {
        "en": "next: every hint is shown (`aiprep hint {id} --all`); "
        "see `aiprep show {id} --answer`",
        "zh": "下一步：提示已全部看过（`aiprep hint {id} --all`）；"
        "参考 `aiprep show {id} --answer`",
    },
    "verify.answer": {
        "en": "next: see the answer, `aiprep show {id} --answer`",
        "zh": "下一步：查看答案 `aiprep show {id} --answer`",
    },
    "hint.head": {"en": "hint {i}/{n}:", "zh": "提示 {i}/{n}："},
    "hint.none": {"en": "{id} has no hints", "zh": "{id} 没有提示"},
    "hint.all_shown": {
        "en": "all {n} hint(s) of {id} are shown; `aiprep hint {id} --all` lists them, "
        "`aiprep show {id} --answer` gives the answer",
        "zh": "{id} 的 {n} 条提示已全部看过；`aiprep hint {id} --all` 列出全部，"
        "`aiprep show {id} --answer` 显示答案",
    },
    "hint.more": {
        "en": "{left} more: run `aiprep hint {id}` again",
        "zh": "还有 {left} 条：再运行 `aiprep hint {id}`",
    },
    "hint.reset": {"en": "hints of {id} hidden again", "zh": "{id} 的提示已重新隐藏"},
    "verify.watching": {
        "en": "watching {path}: save it to verify again, Ctrl-C to stop",
        "zh": "正在监视 {path}：保存即重新验证，Ctrl-C 停止",
    },
    "verify.changed": {"en": "{path} changed", "zh": "{path} 已修改"},
    "verify.stopped": {"en": "stopped watching", "zh": "已停止监视"},
    "practice.wrote": {"en": "wrote {path}", "zh": "已写入 {path}"},
    "practice.next": {
        "en": "next: fill in the functions, then `aiprep verify {id} {path}`",
        "zh": "下一步：补全函数，然后运行 `aiprep verify {id} {path}`",
    },
    "progress.forgot": {"en": "forgot {n} card(s)", "zh": "已清除 {n} 张卡片"},
    "progress.imported": {
        "en": "imported {cards} card(s) and {reviews} review(s) from {path}",
        "zh": "已从 {path} 导入 {cards} 张卡片、{reviews} 条复习记录",
    },
    # -- stats and today --------------------------------------------------------------
    "stats.col.topic": {"en": "topic", "zh": "主题"},
    "stats.col.seen": {"en": "seen", "zh": "已学"},
    "stats.col.learning": {"en": "learning", "zh": "学习中"},
    "stats.col.due_now": {"en": "due now", "zh": "现在到期"},
    "stats.col.due_week": {"en": "due this week", "zh": "本周到期"},
    "stats.col.recall": {"en": "recall", "zh": "记忆率"},
    "stats.all": {"en": "all", "zh": "合计"},
    "stats.line": {
        "en": "{reviews} reviews · streak {streak}{next}",
        "zh": "{reviews} 次复习 · 连续 {streak}{next}",
    },
    "stats.next": {"en": " · next due {when}", "zh": " · 下一道到期：{when}"},
    "stats.recall_note": {
        "en": "recall: FSRS's estimated chance you would recall a seen question now "
        "(learning: rated again or new in the last steps; FSRS makes no long-term "
        "estimate for those until they graduate)",
        "zh": "记忆率：FSRS 估计你现在能回忆起已学题目的概率"
        "（学习中：刚评为 again 或仍在学习步骤中的题，毕业前 FSRS 不做长期估计）",
    },
    "today.due": {
        "en": "{due} due now · {learning} learning · {new} new of {total}",
        "zh": "现在到期 {due} · 学习中 {learning} · 新题 {new}/{total}",
    },
    "today.due_ids": {"en": "due: {ids}", "zh": "到期：{ids}"},
    "today.streak": {"en": "streak: {days}", "zh": "连续：{days}"},
    "today.next_due": {"en": "next due: {when}", "zh": "下一道到期：{when}"},
    "today.run": {"en": "next: {command}", "zh": "下一步：{command}"},
    "today.start": {
        "en": "nothing reviewed yet: start with `aiprep quiz` (or `aiprep list` to browse)",
        "zh": "还没有复习记录：先运行 `aiprep quiz`（或用 `aiprep list` 浏览题库）",
    },
    # -- when -------------------------------------------------------------------------
    "when.now": {"en": "now", "zh": "现在"},
    "when.today": {"en": "{time} today", "zh": "今天 {time}"},
    "when.tomorrow": {"en": "{time} tomorrow", "zh": "明天 {time}"},
    # -- list and show ------------------------------------------------------------------
    "list.col.id": {"en": "id", "zh": "编号"},
    "list.col.kind": {"en": "kind", "zh": "题型"},
    "list.col.difficulty": {"en": "difficulty", "zh": "难度"},
    "list.col.run": {"en": "run", "zh": "运行"},
    "list.col.status": {"en": "status", "zh": "状态"},
    "list.col.title": {"en": "title", "zh": "标题"},
    "list.summary": {
        "en": "{shown} of {total} questions, {runnable} runnable",
        "zh": "共 {total} 道题，显示 {shown} 道，{runnable} 道可运行",
    },
    "status.new": {"en": "new", "zh": "新"},
    "status.due": {"en": "due", "zh": "到期"},
    "status.learning": {"en": "learning", "zh": "学习中"},
    "status.verified": {"en": "verified ✓", "zh": "已验证 ✓"},
    "status.failed": {"en": "failed ✗", "zh": "未通过 ✗"},
    "status.seen": {"en": "seen", "zh": "已学"},
    "show.runnable": {"en": "runnable: aiprep run {id}", "zh": "可运行：aiprep run {id}"},
    "show.source": {"en": "source: {where}", "zh": "出处：{where}"},
    "show.see_also": {"en": "see also: {ids}", "zh": "另见：{ids}"},
    "show.answer": {"en": "Answer", "zh": "参考答案"},
    "show.key_points": {"en": "Key points", "zh": "要点"},
    "show.choices": {"en": "Choices", "zh": "选项"},
    "show.hints": {"en": "Hints", "zh": "提示"},
    "show.as_of": {"en": "as of", "zh": "信息截至"},
    "show.references": {"en": "References", "zh": "参考资料"},
    # -- errors -------------------------------------------------------------------------
    "note.prefix": {
        "en": "aiprep: {old} is not an id; taking {new}, the only one that starts so",
        "zh": "aiprep：没有 {old} 这道题；按前缀取唯一匹配的 {new}",
    },
    "note.moved": {
        "en": "aiprep: {old} is now {new}",
        "zh": "aiprep：{old} 已改为 {new}",
    },
    "error.no_question": {"en": "no question {id!r}{hint}", "zh": "没有题目 {id!r}{hint}"},
    "error.did_you_mean": {"en": "; did you mean {ids}?", "zh": "；你是不是要找 {ids}？"},
    "error.see_list": {"en": "; see `aiprep list`", "zh": "；见 `aiprep list`"},
    "error.ambiguous": {
        "en": "{id!r} matches {n} questions: {ids}; type more of the id",
        "zh": "{id!r} 对应 {n} 道题：{ids}；请输入更完整的编号",
    },
    "error.not_runnable": {
        "en": "{id} is a {kind} question without a runnable solution",
        "zh": "{id} 是{kind}题，没有可运行的参考实现",
    },
    "error.no_code": {
        "en": "{id} is a {kind} question: there is no code to practise",
        "zh": "{id} 是{kind}题：没有可练习的代码",
    },
    "error.nothing_to_verify": {
        "en": "{id} is a {kind} question: there is nothing to verify",
        "zh": "{id} 是{kind}题：没有可验证的代码",
    },
    "error.watch_json": {
        "en": "--watch and --json do not go together",
        "zh": "--watch 和 --json 不能同时使用",
    },
    "error.no_terminal": {
        "en": "`aiprep {command}` reads single keys and needs a terminal on stdin; "
        "run it in a terminal (for data, see `aiprep stats --json`)",
        "zh": "`aiprep {command}` 需要逐键输入，标准输入必须是终端；"
        "请在终端中运行（要数据请用 `aiprep stats --json`）",
    },
    "error.unknown_topic": {
        "en": "unknown topic {names}; topics: {known}",
        "zh": "没有主题 {names}；现有主题：{known}",
    },
    "error.unknown_tag": {
        "en": "unknown tag {names}; tags: {known}",
        "zh": "没有标签 {names}；现有标签：{known}",
    },
}


def t(key: str, lang: str = "en", /, **values: object) -> str:
    """The message ``key`` in ``lang`` (``both`` and unknown languages speak English),
    with ``values`` filled in. An unknown key is a bug: KeyError."""
    texts = MESSAGES[key]
    return texts["zh" if lang == "zh" else "en"].format(**values)


def count(n: int, unit: str, lang: str = "en") -> str:
    """``n`` of ``unit`` (``question``, ``minute``, ``day``) in words: "1 minute", "3 分钟"."""
    return t(f"count.{unit}.{'one' if n == 1 else 'other'}", lang, n=n)


def rating_word(rating: int, lang: str = "en") -> str:
    return t(f"rating.{rating}", lang)
