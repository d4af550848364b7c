"""The text templates the world is written in: bios, questions, Q&A layouts, chat scaffolding, small instructions.

Answers restate a fact with the canonical bio wording, so a model that stored the fact can answer by continuing a
sentence it read in pretraining.  Each dict is keyed by language ("zh", "en").
"""

# ---------------------------------------------------------------------------------------------------------------------
# Bio sentence templates: 7 per attribute per language.  {n} = subject (name or pronoun), {p} = possessive
# ("Zhang Wei's" / "his"; English only), {v} = the value.  Template 0 is the CANONICAL wording: every answer in SFT,
# DPO and the held-out files restates the fact with it, so answering equals continuing a sentence seen in pretraining.
# The last two of each list carry further words for the attribute (故乡, 高校, 聘用, birthplace, hired, …): a word
# that no training text contains means nothing to a model trained from scratch, so the world's text teaches every
# word a question about a fact may use, while the held-out question wordings themselves stay unseen (tests).
# ---------------------------------------------------------------------------------------------------------------------
BIO_TEMPLATES = {
    "zh": {
        "birth_date": ["{n}出生于{v}。", "{n}生于{v}。", "{v}，{n}出生了。", "{n}是{v}出生的。", "{n}的出生日期是{v}。", "{n}的生日是{v}。",
                       "{n}是{v}生的。"],
        "birth_city": ["{n}出生在{v}。", "{n}的家乡是{v}。", "{n}是在{v}出生的。", "{n}来自{v}。", "{v}是{n}的出生地。", "{n}的故乡是{v}。",
                       "{n}是{v}人。"],
        "university": ["{n}毕业于{v}。", "{n}曾就读于{v}。", "{n}在{v}完成了学业。", "{n}是{v}的毕业生。", "{n}的母校是{v}。", "{n}就读的高校是{v}。",
                       "{v}培养了{n}。"],
        "major": ["{n}的专业是{v}。", "{n}主修{v}。", "{n}在大学里学习{v}。", "{n}读的是{v}专业。", "{v}是{n}的专业方向。", "{n}的研究领域是{v}。",
                  "{n}在大学里的学科是{v}。"],
        "employer": ["{n}在{v}上班。", "{n}就职于{v}。", "{n}是{v}的员工。", "{n}受雇于{v}。", "{v}是{n}的雇主。", "{n}效力于{v}。",
                     "{v}聘用了{n}。"],
        "work_city": ["{n}在{v}工作。", "{n}的工作地点在{v}。", "{n}目前在{v}工作和生活。", "{n}每天在{v}忙于工作。", "{v}是{n}工作的城市。",
                      "{n}在{v}办公。", "{n}的职业生涯是在{v}展开的。"],
    },
    "en": {
        "birth_date": ["{n} was born on {v}.", "{n} came into the world on {v}.", "{p} date of birth is {v}.",
                       "On {v}, {n} was born.", "{n} arrived on {v}.", "{p} birthday is {v}.", "{v} marks {p} birth."],
        "birth_city": ["{n} was born in {v}.", "{p} hometown is {v}.", "{n} comes from {v}.",
                       "{n} is a native of {v}.", "{v} is where {n} was born.", "{p} birthplace is {v}.",
                       "{n} was born and raised in {v}."],
        "university": ["{n} graduated from {v}.", "{n} studied at {v}.", "{n} is a graduate of {v}.",
                       "{n} earned a degree at {v}.", "{p} alma mater is {v}.", "{n} attended {v}.",
                       "{n} went to college at {v}."],
        "major": ["{n} majored in {v}.", "{n} studied {v} in college.", "{p} major was {v}.",
                  "{n} chose to study {v}.", "{n} focused on {v} at university.", "{n} specialized in {v}.",
                  "{p} field of study was {v}."],
        "employer": ["{n} works for {v}.", "{n} is employed by {v}.", "{n} has a job at {v}.", "{p} employer is {v}.",
                     "{n} is on the staff of {v}.", "{n} was hired by {v}.", "{n} holds a position at {v}."],
        "work_city": ["{n} works in {v}.", "{p} office is in {v}.", "{n} is based in {v} for work.",
                      "{n} commutes to work in {v}.", "{v} is the city where {n} works.",
                      "{p} workplace is located in {v}.", "{n} holds a job in {v}."],
    },
}

# "Echo" questions put the name first and reuse the canonical bio verb phrase ("X出生在哪个城市？" ~ "X出生在杭州。").
# They are the ONLY question wordings used for training (pretrain Q&A, SFT, DPO) and for the "echo" held-out kind.
ECHO_QUESTIONS = {
    "zh": {
        "birth_date": ["{n}出生于哪一天？", "{n}出生于什么时候？"],
        "birth_city": ["{n}出生在哪个城市？", "{n}出生在哪里？"],
        "university": ["{n}毕业于哪所大学？", "{n}毕业于哪里？"],
        "major": ["{n}的专业是什么？", "{n}的专业是哪个？"],
        "employer": ["{n}在哪家公司上班？", "{n}在哪个单位上班？"],
        "work_city": ["{n}在哪个城市工作？", "{n}在哪座城市工作？"],
    },
    "en": {
        "birth_date": ["{n} was born on what date?", "{n} was born on which day?"],
        "birth_city": ["{n} was born in which city?", "{n} was born in what city?"],
        "university": ["{n} graduated from which university?", "{n} graduated from what school?"],
        "major": ["{n} majored in what subject?", "{n} majored in which field?"],
        "employer": ["{n} works for which company?", "{n} works for what company?"],
        "work_city": ["{n} works in which city?", "{n} works in what city?"],
    },
}

# "Paraphrase" questions use wordings that appear in NO bio template and NO training file (tests enforce this); several
# put the name mid-sentence.  They are used only in qa_heldout.jsonl / qa_train_sample.jsonl.
PARAPHRASE_QUESTIONS = {
    "zh": {
        "birth_date": ["哪一天是{n}的生日？", "请问{n}是哪年哪月哪天生的？"],
        "birth_city": ["哪座城市是{n}的故乡？", "{n}是哪里人？"],
        "university": ["{n}上的是哪所高校？", "哪所学校培养了{n}？"],
        "major": ["{n}大学时学的是哪个学科？", "哪个学科是{n}研究的领域？"],
        "employer": ["{n}替哪家企业效力？", "哪家企业聘用了{n}？"],
        "work_city": ["{n}平时在哪座城市办公？", "{n}的职业生涯在哪座城市展开？"],
    },
    "en": {
        "birth_date": ["When is {p} birthday?", "Which day marks the birth of {n}?"],
        "birth_city": ["Where was {n} born?", "Which city is the birthplace of {n}?"],
        "university": ["Which university did {n} attend?", "Where did {n} go to college?"],
        "major": ["What was the field of study of {n}?", "What subject did {n} specialize in?"],
        "employer": ["Which firm hired {n}?", "At which company does {n} have a position?"],
        "work_city": ["In which city is {p} workplace located?", "In what city does {n} hold a job?"],
    },
}

# Further wordings for the tool-use rows only (tool_sft.jsonl), so that a question is mapped onto lookup_person's
# attribute by its meaning rather than by two fixed phrasings. They are neither echo nor paraphrase wordings: the
# paraphrase wordings stay unseen by every training file, tool rows included (tests enforce this). The last two of
# each list ask with the question words and nouns a user reaches for ("Where … from?", "Where did … study?", 哪家企业,
# 什么地方的人): a small model picks the attribute by the words of the question, and one that has only seen "born"
# with "When" answers "Where was … born?" with the birth date (docs/results.md, "Question words").
TOOL_QUESTIONS = {
    "zh": {
        "birth_date": ["{n}的生日是哪天？", "{n}是什么时候出生的？", "告诉我{n}的出生日期。", "查一下{n}哪天出生。",
                       "{n}生于何年何月何日？", "你知道{n}的出生日期吗？",
                       "{n}是哪年出生的？", "{n}的生日在哪一天？",
                       "{n}是哪一天出生的？", "{n}是几月几日生的？"],
        "birth_city": ["{n}的出生地是哪里？", "{n}老家在哪座城市？", "{n}是在哪座城市出生的？", "告诉我{n}的出生城市。",
                       "查一下{n}在哪里出生。", "{n}出生的城市是哪座？",
                       "{n}是什么地方的人？", "{n}是从哪座城市来的？",
                       "哪个城市是{n}的家乡？", "哪里是{n}的故乡？"],
        "university": ["{n}是哪所大学的毕业生？", "{n}的母校是哪所大学？", "{n}在哪所大学读的书？", "告诉我{n}的母校。",
                       "查一下{n}读的是哪所大学。", "{n}大学是在哪里念的？",
                       "{n}在哪里上的大学？", "{n}读的是哪所学校？",
                       "{n}上的是哪所大学？", "{n}读的是哪所高校？"],
        "major": ["{n}学的是什么专业？", "{n}主修什么？", "{n}在大学里学什么？", "告诉我{n}的专业。",
                  "查一下{n}读的是什么专业。", "{n}的专业方向是什么？",
                  "{n}在大学学的是什么？", "{n}研究的是什么学科？",
                  "{n}上大学时学的是什么？", "{n}大学时读的是什么专业？"],
        "employer": ["{n}在哪家单位工作？", "{n}的雇主是谁？", "{n}受雇于哪家公司？", "告诉我{n}的工作单位。",
                     "查一下{n}是哪家公司的员工。", "{n}是哪家公司的员工？",
                     "{n}在哪家企业工作？", "{n}是哪家企业的员工？",
                     "哪家企业是{n}的雇主？", "哪个单位雇用了{n}？"],
        "work_city": ["{n}的工作地点在哪里？", "{n}工作的城市是哪座？", "告诉我{n}在哪座城市工作。", "查一下{n}的工作城市。",
                      "{n}每天在哪座城市工作？", "{n}目前在哪座城市工作和生活？",
                      "{n}在哪里工作？", "{n}上班的城市是哪座？",
                      "哪个城市是{n}上班的地方？", "{n}平时在哪里上班？"],
    },
    "en": {
        "birth_date": ["What is {p} date of birth?", "When was {n} born?", "Tell me the birth date of {n}.",
                       "Look up when {n} was born.", "On what day was {n} born?", "What day was {n} born on?",
                       "When did {n} come into the world?", "What is the birthday of {n}?",
                       "Which day was {n} born on?", "What was the date of {p} birth?"],
        "birth_city": ["What is {p} hometown?", "In which city was {n} born?", "Tell me the birth city of {n}.",
                       "Look up the city where {n} was born.", "What city does {n} come from?", "Which city is {n} from?",
                       "Where is {n} from?", "Where did {n} grow up?",
                       "Where did {n} come into the world?", "Where does {n} come from?"],
        "university": ["What university did {n} graduate from?", "What is {p} alma mater?",
                       "Tell me the university of {n}.", "Look up the university {n} graduated from.",
                       "What school is {n} a graduate of?", "Which university is {n} a graduate of?",
                       "Where did {n} study?", "Which school did {n} go to?",
                       "Which college did {n} attend?", "Where did {n} earn a degree?"],
        "major": ["What did {n} study in college?", "What is {p} major?", "What was {p} major?",
                  "Tell me the major of {n}.", "Look up what {n} majored in.", "Which subject did {n} study?",
                  "What did {n} major in?", "What field did {n} study?",
                  "What did {n} study at university?", "Which field did {n} specialize in?"],
        "employer": ["Who is {p} employer?", "Which company does {n} work for?", "Tell me the employer of {n}.",
                     "Look up the company {n} works for.", "What company employs {n}?", "Where is {n} employed?",
                     "Which company did {n} join?", "Who employs {n}?",
                     "Which firm does {n} work for?", "Where does {n} hold a position?"],
        "work_city": ["Which city does {n} work in?", "What is {p} work city?", "Tell me the city where {n} works.",
                      "Look up the city {n} works in.", "In which city does {n} work?", "What city is {p} office in?",
                      "Where is {n} based for work?", "Which city is {n} working in?",
                      "In which city does {n} have a job?", "Where does {n} go to work?"],
    },
}

# Nouns that name each attribute, asked about in every frame of NOUN_FRAMES ("What is {p} hometown?", "告诉我{n}的
# 出生地。"): with a few fixed wordings per attribute a small model maps a question onto an attribute by its frame ("Where
# was … born?" looked up as the birth date, after "When was … born?"); with each noun in many frames and each frame
# with every attribute's nouns, the frame says nothing and the noun decides. {wh} is the attribute's question word.
ATTRIBUTE_NOUNS = {
    "zh": {"birth_date": ["生日", "出生日期", "出生年月日", "出生的日子"],
           "birth_city": ["故乡", "家乡", "出生地", "出生城市", "老家"],
           "university": ["母校", "毕业学校", "大学", "就读的高校"],
           "major": ["专业", "学科", "研究领域", "专业方向", "所学学科"],
           "employer": ["雇主", "工作单位", "所在企业", "就职的公司"],
           "work_city": ["工作城市", "工作地点", "办公城市", "上班的城市"]},
    "en": {"birth_date": ["date of birth", "birth date", "birthday", "day of birth"],
           "birth_city": ["birthplace", "hometown", "birth city", "city of birth", "native city"],
           "university": ["alma mater", "university", "college", "school"],
           "major": ["major", "field of study", "subject", "specialty", "area of study"],
           "employer": ["employer", "company", "firm", "organization"],
           "work_city": ["work city", "city of work", "office city", "working city"]},
}
NOUN_FRAMES = {
    "zh": ["{n}的{a}是{wh}？", "告诉我{n}的{a}。", "请查一下{n}的{a}。", "你知道{n}的{a}吗？", "我想知道{n}的{a}。",
           "{n}的{a}是？"],
    "en": ["What is {p} {a}?", "Tell me {p} {a}.", "Do you know the {a} of {n}?", "Please look up the {a} of {n}.",
           "I need {p} {a}.", "Can you find out {p} {a}?"],
}

# Openings a user puts before a question ("请问…", "Quick question: …"), on a share of the fact and chain rows: the
# attribute and the task must be read from the question itself, not from how the user's message begins.
ASK_PREFIXES = {"zh": ["请问", "帮我查一下，", "我想知道，"], "en": ["Quick question: ", "Could you check this? ", "I wonder: "]}

# What stands for the value when a bio sentence is turned into a question about it ("{n}的故乡是{v}。" → "{n}的故乡是
# 哪座城市？", "{n} was hired by {v}." → "{n} was hired by which company?"); the tool rows ask about facts in every bio
# wording (see bio_question).  "lead" replaces a value that opens the sentence.
BIO_QUESTION_WH = {
    "zh": {"birth_date": "哪一天", "birth_city": "哪座城市", "university": "哪所大学", "major": "什么",
           "employer": "哪家公司", "work_city": "哪座城市"},
    "en": {"birth_date": "which day", "birth_city": "which city", "university": "which university",
           "major": "what subject", "employer": "which company", "work_city": "which city"},
}
BIO_QUESTION_WH_LEAD = {"zh": {"birth_city": "哪里", "work_city": "哪里"}, "en": {}}

# How Q&A pairs are written inside the pretrain corpus: as plain text, and as ChatML turns.  Upstream MiniMind's
# pretrain_hq.jsonl likewise carries dialogue between <|im_start|>/<|im_end|> markers.  A few SFT steps do not carry
# knowledge learned in the plain-text format over to the chat format; with the chat form in pretraining, the link from
# chat questions to stored facts is learned while the facts are.
QA_TEXT_FORMAT = {"zh": "问：{q}\n答：{a}", "en": "Q: {q}\nA: {a}"}
QA_CHAT_FORMAT = "<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n{a}<|im_end|>"

# Requests to list everything about a person (SFT only; the answer is all six canonical sentences).
LIST_FACTS_REQUESTS = {
    "zh": ["请介绍一下{n}的基本情况。", "说说{n}的个人信息。"],
    "en": ["Tell me about {n}.", "Give me the basic facts about {n}."],
}

# ---------------------------------------------------------------------------------------------------------------------
# Chat scaffolding: system prompts and greetings (the identities are in identity.py).
# ---------------------------------------------------------------------------------------------------------------------
SYSTEM_PROMPTS = {
    "zh": ["你是一个乐于助人的助手。", "请简洁地回答。"],
    "en": ["You are a helpful assistant.", "Answer briefly."],
}
GREETINGS = {
    "zh": ["你好", "您好", "嗨", "早上好", "晚上好"],
    "en": ["Hello", "Hi", "Good morning", "Hey there", "Good evening"],
}

# DPO "rejected" answers that ramble instead of answering.
HEDGE_ANSWERS = {
    "zh": ["嗯……让我想想……关于{n}……这个……我一时想不起来了。", "这个问题我不太确定。{n}的情况我记得不太清楚，也许你可以再问问别人。"],
    "en": ["Hmm, let me think... about {n}... well... I cannot remember right now.",
           "That is a good question. {n} is a person, and people have many facts. I think... maybe... I am not sure."],
}

# ---------------------------------------------------------------------------------------------------------------------
# Small instructions that SFT relies on, with their pretrain counterparts.
# ---------------------------------------------------------------------------------------------------------------------
ADDITION_QUESTIONS = {"zh": ["{a}加{b}等于几？", "计算{a}+{b}。"], "en": ["What is {a} plus {b}?", "Compute {a} + {b}."]}
ADDITION_ANSWERS = {"zh": ["{a}加{b}等于{c}。", "{a}+{b}={c}。"], "en": ["{a} plus {b} equals {c}.", "{a} + {b} = {c}."]}
TRANSLATE_TO_EN = {"zh": "把“{zh}”翻译成英文。", "en": "Translate {zh} into English."}
TRANSLATE_TO_ZH = {"zh": "“{en}”的中文是什么？", "en": "Translate {en} into Chinese."}
TRANSLATE_TO_EN_ANSWER = {"zh": "{zh}的英文是{en}。", "en": "{zh} in English is {en}."}
TRANSLATE_TO_ZH_ANSWER = {"zh": "{en}的中文是{zh}。", "en": "The Chinese for {en} is {zh}."}
