from corpus.tokenize import bigrams, tokenize


def test_numbers_keep_their_units():
    tokens = tokenize("基本养老保险参保人数从7.88亿人增加到10.76亿人，2025年占比15%，由55元提高到143元")
    for whole in ("7.88亿", "10.76亿", "2025年", "15%", "55元", "143元"):
        assert whole in tokens
    assert "10" not in tokens and "76" not in tokens


def test_magnitudes_and_full_width_forms():
    assert "9.1万亿" in tokenize("总收入9.1万亿元")
    assert "100多万" in tokenize("从约40万元增长到100多万元")
    assert "15%" in tokenize("提高到１５％".replace("１５", "15"))


def test_domain_words_stay_whole_and_have_subwords():
    tokens = tokenize("新就业形态人员职业伤害保障和个人养老金、社会保障卡")
    for word in ("新就业形态", "职业伤害保障", "个人养老金", "社会保障卡"):
        assert word in tokens
    assert "养老金" in tokens  # search mode adds sub-words, so a shorter question word still matches


def test_question_and_passage_tokenize_the_same_way():
    assert set(tokenize("2025年失业保险参保人数")) <= set(tokenize("2012年至2025年，失业保险参保人数从1.52亿人增加到2.49亿人"))


def test_punctuation_and_stopwords_dropped():
    assert tokenize("的了吗？！，。") == []
    assert tokenize("   ") == []


def test_bigrams():
    assert bigrams("四防“协同”") == frozenset({"四防", "防协", "协同"})
    assert bigrams("A") == frozenset()


def test_the_shared_dictionaries_are_jiebas_own_and_share_each_word():
    """corpus.tokenize builds jieba's frequency table and posseg's tag table in one pass, so they
    share each word's string; with the domain dictionary added they must be exactly what jieba
    would have loaded."""
    import jieba
    import jieba.posseg

    from corpus import tokenize

    ours, tagger = tokenize._jieba(), tokenize._posseg()
    tagger.makesure_userdict_loaded()  # the user dictionary's tags join on the first cut
    reference = jieba.Tokenizer()
    reference.initialize()
    reference.load_userdict(str(tokenize.USER_DICT))
    reference_tagger = jieba.posseg.POSTokenizer(reference)
    reference_tagger.makesure_userdict_loaded()
    assert ours.FREQ == reference.FREQ and ours.total == reference.total
    assert tagger.word_tag_tab == reference_tagger.word_tag_tab
    shared = dict.fromkeys(map(id, ours.FREQ))
    assert all(id(word) in shared for word in list(tagger.word_tag_tab)[:1000])  # one string per word, not two
