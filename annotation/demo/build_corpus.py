"""Writes ``corpus.jsonl``: the demo project's small Chinese corpus, made up here.

Sentences come from templates filled with person, place and organisation names from the
lists below (all written for this project), so the gold spans are known by construction.
Run ``python -m annotation.demo.build_corpus`` to regenerate; the output is deterministic.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

CORPUS = Path(__file__).with_name("corpus.jsonl")

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董潘袁蔡蒋余于杜叶程魏苏吕丁任沈姚卢"
GIVEN = [
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "秀英",
    "霞",
    "平",
    "刚",
    "桂英",
    "建华",
    "志强",
    "文博",
    "子涵",
    "思远",
    "雨桐",
    "浩然",
    "欣怡",
    "俊杰",
    "晓东",
    "海燕",
    "立新",
    "春生",
    "嘉怡",
    "一鸣",
    "若溪",
]
CITIES = [
    "北京",
    "上海",
    "广州",
    "深圳",
    "杭州",
    "南京",
    "成都",
    "重庆",
    "武汉",
    "西安",
    "苏州",
    "天津",
    "长沙",
    "青岛",
    "厦门",
    "昆明",
    "哈尔滨",
    "大连",
    "宁波",
    "合肥",
    "福州",
    "济南",
    "郑州",
    "沈阳",
    "兰州",
    "拉萨",
    "乌鲁木齐",
    "呼和浩特",
    "东京",
    "巴黎",
    "伦敦",
    "纽约",
    "新加坡",
    "柏林",
]
SIGHTS = [
    "西湖",
    "黄浦江",
    "长江",
    "鼓浪屿",
    "泰山",
    "洱海",
    "颐和园",
    "珠江三角洲",
    "浙江省",
    "广东省",
    "四川省",
    "云南省",
    "江苏省",
    "山东省",
]
SCHOOLS = [
    "北京大学",
    "清华大学",
    "复旦大学",
    "浙江大学",
    "南京大学",
    "中山大学",
    "武汉大学",
    "中国科学院",
]
COMPANIES = [
    "华为公司",
    "阿里巴巴集团",
    "腾讯公司",
    "小米科技",
    "比亚迪股份有限公司",
    "招商银行",
    "中国移动",
    "国家电网",
    "长江日报社",
    "新华社",
    "中央电视台",
]
BODIES = [
    "国家统计局",
    "教育部",
    "外交部",
    "交通运输部",
    "人民银行",
    "世界卫生组织",
    "联合国",
    "红十字会",
    "故宫博物院",
    "上海交响乐团",
    "中国足球协会",
    "北京市人民政府",
    "杭州市第一人民医院",
]
TEMPLATES = [
    "{PER}昨天在{LOC.city}会见了{ORG.body}的代表。",
    "{ORG.company}宣布将在{LOC.city}设立新的研究中心。",
    "{PER}毕业于{ORG.school}，现居{LOC.city}。",
    "据{ORG.company}消息，{PER}已于上周抵达{LOC.city}。",
    "{LOC.city}的天气今天格外晴朗。",
    "{PER}和{PER}一起去{LOC.sight}旅游了。",
    "{ORG.body}发言人{PER}表示，合作将继续推进。",
    "来自{LOC.city}的{PER}获得了本次比赛的冠军。",
    "{ORG.company}与{ORG.school}在{LOC.city}签署了合作协议。",
    "{PER}说，{LOC.city}是一座值得再去的城市。",
    "今年春天，{PER}第一次到{LOC.city}出差。",
    "{ORG.company}的年度报告显示营收稳步增长。",
    "{PER}教授在{ORG.school}做了一场关于人工智能的讲座。",
    "从{LOC.city}到{LOC.city}的高铁每天有十几趟。",
    "{PER}向{ORG.body}捐赠了一批图书。",
    "记者从{ORG.body}获悉，{LOC.city}将举办国际博览会。",
    "{PER}在{LOC.city}开了一家小餐馆，生意很好。",
    "{ORG.company}邀请{PER}担任顾问。",
    "{LOC.sight}和{LOC.sight}之间的合作日益密切。",
    "{PER}的新书在{LOC.city}首发，{ORG.company}派人到场祝贺。",
    "周末{PER}带着孩子去{LOC.sight}看风景。",
    "{ORG.company}近日发布了新一代产品。",
    "{PER}认为{ORG.body}的这项决定很有远见。",
    "会议由{PER}主持，{ORG.school}和{ORG.body}的专家出席。",
    "{LOC.city}市民对新开通的地铁线路评价很高。",
    "{PER}已经在{ORG.company}工作了十年。",
]
PLAIN = [
    "今天的会议推迟到下午三点。",
    "这家店的咖啡味道不错。",
    "请大家注意安全，按时返回。",
    "下雨了，记得带伞。",
    "他们讨论了很久，最后达成了一致。",
    "新学期开始了，同学们都很兴奋。",
    "这本书我已经读了两遍。",
    "明天上午有一场重要的考试。",
    "项目进展顺利，预计月底完成。",
    "晚饭后大家一起散步聊天。",
]
FILLERS = {
    "LOC.city": CITIES,
    "LOC.sight": SIGHTS,
    "ORG.school": SCHOOLS,
    "ORG.company": COMPANIES,
    "ORG.body": BODIES,
}


def person(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(GIVEN)


def fill(template: str, rng: random.Random) -> dict:
    """One record: the template's slots replaced, each slot's span recorded as it is placed."""
    text, entities, rest = "", [], template
    while "{" in rest:
        before, _, after = rest.partition("{")
        slot, _, rest = after.partition("}")
        text += before
        value = person(rng) if slot == "PER" else rng.choice(FILLERS[slot])
        label = slot.split(".")[0]
        entities.append({"start": len(text), "end": len(text) + len(value), "label": label})
        text += value
    return {"text": text + rest, "entities": entities}


def build(size: int = 320, eval_share: float = 0.2, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    records, seen = [], set()
    while len(records) < size:
        if rng.random() < 0.08:
            record = {"text": rng.choice(PLAIN), "entities": []}
            if sum(1 for r in records if not r["entities"]) >= len(PLAIN):
                continue
        else:
            record = fill(rng.choice(TEMPLATES), rng)
        if record["text"] in seen:
            continue
        seen.add(record["text"])
        records.append(record)
    for index, record in enumerate(records):
        record["split"] = "eval" if index % round(1 / eval_share) == 0 else "train"
    return records


def main() -> None:
    lines = [json.dumps(record, ensure_ascii=False) for record in build()]
    CORPUS.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(lines)} sentences to {CORPUS}")


if __name__ == "__main__":
    main()
