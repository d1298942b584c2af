"""The words people and machines use: out of office, unsubscribe and bounce phrasing.

Phrases are per language (en, de, fr, es, nl, pt, it) and deliberately specific:
a false "unsubscribe" suppresses a lead who wanted to talk, a false "out of
office" pauses one who answered. Every pattern is linear (no nested repeats),
because it runs on text a stranger wrote.

Body patterns run on lower-cased text without ``re.IGNORECASE`` and without a
leading ``\b`` (the word boundary is checked on the match instead): both flags
keep the regex engine from skipping ahead to a possible first character, which
made these patterns twenty times slower. Callers pass ``text.lower()``.
"""

from __future__ import annotations

import re

LANGUAGES = ("en", "de", "fr", "es", "nl", "pt", "it")

_I = re.IGNORECASE
_LEADING_BOUNDARY = re.compile(r"(^|\||\(\?:|\(\?P<\w+>)\\b")


def lowered(pattern: str) -> re.Pattern[str]:
    """Compile a pattern written for lower-cased text, dropping its leading word boundaries."""
    return re.compile(_LEADING_BOUNDARY.sub(r"\1", pattern))


def _by_language(table: dict[str, str]) -> re.Pattern[str]:
    """One pattern with a named group per language, so one scan finds any of them."""
    return lowered("|".join(f"(?P<{lang}>{pattern})" for lang, pattern in table.items()))


def find_word(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    """The first match of ``pattern`` in ``text`` that starts at a word boundary."""
    for match in pattern.finditer(text):
        start = match.start()
        if start == 0 or not text[start].isalnum():
            return match
        before = text[start - 1]
        if not (before.isalnum() or before == "_"):
            return match
    return None


# Subjects of automatic answers, at the start of the subject line.
AUTO_SUBJECT = re.compile(
    r"^\s*(?:\[[^\]]{0,40}\]\s*)?(?:"
    r"auto(?:matic|mated)?[ -]?(?:reply|response|answer)|out\s+of\s+(?:the\s+)?office|\bOOO\b"
    r"|on\s+(?:vacation|holiday|leave)|away\s+from\s+(?:the\s+)?office|absence\s+(?:notice|notification)"
    r"|automatische\s+antwort|abwesenheit(?:snotiz|smeldung|snachricht)?|nicht\s+im\s+b(?:ü|ue)ro"
    r"|r[ée]ponse\s+automatique|absent(?:e)?\s+du\s+bureau|message\s+d.absence|absence\s*:"
    r"|respuesta\s+autom[áa]tica|fuera\s+de\s+(?:la\s+)?oficina|ausente"
    r"|automatisch\s+antwoord|afwezig(?:heid)?|niet\s+op\s+kantoor"
    r"|resposta\s+autom[áa]tica|fora\s+do\s+escrit[óo]rio|aus[êe]ncia"
    r"|risposta\s+automatica|fuori\s+(?:sede|ufficio)|assente|assenza"
    r")",
    _I,
)

# Out-of-office wording in a body: someone saying they are away, in their own words.
_OOO = _by_language(
    {
        "en": r"\bi\s*(?:am|'m|will\s+be|'ll\s+be|shall\s+be|have\s+been)\s+"
        r"(?:currently\s+|now\s+)?(?:out\s+of\s+(?:the\s+)?office|away\s+(?:from|until|till|on|and|for)|on\s+(?:annual\s+"
        r"|parental\s+|maternity\s+|paternity\s+|sick\s+)?(?:leave|vacation|holidays?|pto)"
        r"|off\s+(?:work|sick)|absent)|\bout\s+of\s+(?:the\s+)?office\s+(?:until|till|from"
        r"|through|returning|and\s+will|with\s+(?:limited|no))|limited\s+access\s+to\s+(?:my\s+)?"
        r"e-?mail|\bi\s*(?:will|'ll)\s+be\s+back\s+(?:in\s+the\s+office\s+)?on\b"
        r"|\bback\s+in\s+the\s+office\s+on\b|\breturn(?:ing)?\s+to\s+the\s+office\s+on\b"
        r"|\bi\s*(?:am|'m)\s+no\s+longer\s+(?:with|at|working)|\bno\s+longer\s+works?\s+(?:at|for)\b",
        "de": r"(?:ich\s+bin|bin\s+ich|ich\s+befinde\s+mich|befinde\s+ich\s+mich)\s+"
        r"(?:\S+\s+){0,6}?(?:nicht\s+im\s+(?:büro|buero|hause|haus)|abwesend|im\s+urlaub|außer\s+haus|ausser\s+haus"
        r"|nicht\s+erreichbar|auf\s+(?:dienst)?reise|in\s+elternzeit)|abwesenheitsnotiz"
        r"|(?:bin\s+ich|ich\s+bin)\s+(?:\S+\s+){0,4}?wieder\s+(?:im\s+büro|erreichbar|da)"
        r"|dies\s+ist\s+eine\s+automatische\s+(?:antwort|nachricht)|automatische\s+antwort",
        "fr": r"je\s+(?:suis|serai)\s+(?:actuellement\s+)?(?:absente?|en\s+(?:congés?|vacances"
        r"|déplacement|deplacement|rendez-vous)|hors\s+du\s+bureau|indisponible)"
        r"|(?:je\s+serai\s+)?de\s+retour\s+(?:le|au\s+bureau|à\s+partir)|message\s+d.absence"
        r"|réponse\s+automatique|reponse\s+automatique|absente?\s+(?:du\s+bureau|jusqu)",
        "es": r"(?:estoy|estaré|estare|me\s+encuentro)\s+(?:actualmente\s+)?"
        r"(?:fuera\s+de\s+(?:la\s+)?oficina|de\s+vacaciones|ausente|de\s+viaje|de\s+baja|sin\s+acceso)"
        r"|(?:regresaré|regresare|volveré|volvere|estaré\s+de\s+vuelta|de\s+regreso)\s+el"
        r"|respuesta\s+automática|respuesta\s+automatica",
        "nl": r"(?:ik\s+ben|ben\s+ik)\s+(?:\S+\s+){0,5}?(?:afwezig|niet\s+(?:op\s+kantoor|aanwezig"
        r"|bereikbaar)|met\s+vakantie|op\s+vakantie|met\s+verlof)|(?:ik\s+ben|ben\s+ik)\s+(?:\S+\s+)"
        r"{0,4}?weer\s+(?:aanwezig|bereikbaar|op\s+kantoor|terug)|automatisch\s+antwoord",
        "pt": r"(?:estou|estarei|encontro-me)\s+(?:atualmente\s+|actualmente\s+)?(?:fora\s+do\s+"
        r"escrit[óo]rio|de\s+f[ée]rias|ausente|em\s+viagem|de\s+licen[çc]a|sem\s+acesso)"
        r"|(?:retornarei|regressarei|voltarei|estarei\s+de\s+volta)\s+(?:em|no|na|a|ao)"
        r"|resposta\s+autom[áa]tica",
        "it": r"(?:sono|sarò|saro)\s+(?:attualmente\s+)?(?:fuori\s+(?:ufficio|sede)|in\s+(?:ferie"
        r"|vacanza|viaggio|malattia)|assente)|(?:rientrerò|rientrero|tornerò|tornero|sarò\s+di"
        r"\s+ritorno|di\s+rientro)\s+(?:il|in|lunedì|martedì|mercoledì|giovedì|venerdì)"
        r"|risposta\s+automatica",
    }
)

# A body saying it was sent by a machine.
AUTOMATIC = lowered(
    r"\bthis\s+is\s+an\s+(?:automat(?:ic|ed)|auto-?generated)\s+(?:reply|response|message|e-?mail)"
    r"|\bautomatically\s+generated\s+(?:reply|response|message)|dies\s+ist\s+eine\s+automatische"
    r"|automatisch\s+generiert|ceci\s+est\s+un\s+(?:message|e-?mail|courriel)\s+automatique"
    r"|r[ée]ponse\s+automatique|este\s+es\s+un\s+(?:mensaje|correo)\s+autom[áa]tico"
    r"|respuesta\s+autom[áa]tica|dit\s+is\s+een\s+automatisch|automatisch\s+(?:antwoord|bericht)"
    r"|esta\s+[ée]\s+uma\s+(?:mensagem|resposta)\s+autom[áa]tica|resposta\s+autom[áa]tica"
    r"|questa\s+[èe]\s+una\s+(?:risposta|email|e-mail|mail)\s+automatica|risposta\s+automatica"
)
# The redirect an out-of-office text gives: urgent matters, a colleague to write to.
REDIRECT = lowered(
    r"\burgent|\bin\s+my\s+absence|\bplease\s+contact\b|\bi\s+will\s+(?:respond|reply|get\s+back)"
    r"|dringend|in\s+meiner\s+abwesenheit|wenden\s+sie\s+sich|vertretung"
    r"|\burgen(?:ce|t)|en\s+mon\s+absence|veuillez\s+contacter|je\s+(?:vous\s+)?r[ée]pondrai"
    r"|\burgente?s?\b|en\s+mi\s+ausencia|p[óo]ngase\s+en\s+contacto|responder[ée]"
    r"|\bdringende?\b|tijdens\s+mijn\s+afwezigheid|neem\s+contact|contact\s+opnemen"
    r"|\burgentes?\b|na\s+minha\s+aus[êe]ncia|entre\s+em\s+contato|responderei"
    r"|\burgen(?:za|ze|ti)\b|in\s+mia\s+assenza|contattare|risponder[òo]"
)

# A person asking not to be written to again.
_UNSUBSCRIBE = _by_language(
    {
        "en": r"\bun-?subscribe\b|\bopt\s+(?:me\s+)?out\b|\bopt-out\b|\bremove\s+(?:me|us|my"
        r"\s+(?:e-?mail|address|name|details|contact))\b|\btake\s+(?:me|us|my\s+\S+)\s+off\b"
        r"|\bstop\s+(?:e-?mailing|sending|contacting|messaging|spamming|writing\s+to)\b"
        r"|\b(?:do\s+not|don'?t|never)\s+(?:e-?mail|contact|message|write\s+to|send)\s+(?:me|us)"
        r"\b|\bno\s+more\s+e-?mails\b|\bleave\s+me\s+alone\b|\bremove\s+from\s+(?:your|this)\s+"
        r"(?:list|mailing|database)\b|\bdelete\s+my\s+(?:data|e-?mail|address)\b",
        "de": r"\babmelden\b|\babbestellen\b|\baustragen\b"
        r"|\btragen\s+sie\s+mich\s+(?:\S+\s+){0,5}?aus\b|\bentfernen\s+sie\s+(?:mich|meine)"
        r"|\blöschen\s+sie\s+(?:mich|meine)|\bkeine\s+(?:weiteren\s+)?(?:e-?mails|nachrichten"
        r"|werbung)\b|\bnicht\s+mehr\s+(?:anschreiben|kontaktieren|schreiben|zuschicken|zusenden)"
        r"|\bschreiben\s+sie\s+mir\s+nicht\s+mehr|\bwiderspreche\b",
        "fr": r"d[ée]sabonn|d[ée]sinscri|\bretirez[- ]moi\b|\bsupprimez[- ]moi\b"
        r"|\bne\s+plus\s+(?:recevoir|être\s+contact)|\bne\s+me\s+(?:contactez|écrivez|ecrivez)"
        r"\s+plus\b|\barr[êe]tez\s+de\s+m.(?:envoyer|écrire|ecrire|contacter)"
        r"|\bretirer\s+de\s+votre\s+liste",
        "es": r"\bdar(?:me|se)?\s+de\s+baja\b|\bden(?:me)?\s+de\s+baja\b"
        r"|\belim[íi]n(?:en|eme|ame)\b"
        r"|\bno\s+me\s+(?:env[íi]en?|escriban?|contacten?|vuelvan?\s+a)\b|\bdej(?:en|e)\s+de\s+"
        r"(?:enviar|escribir|contactar)|\bquit(?:en|ar)(?:me)?\s+de\s+(?:la|su|sus)\s+lista"
        r"|\bs[áa]quen(?:me)?\s+de",
        "nl": r"\bafmelden\b|\buitschrijven\b|\bverwijder\s+(?:mij|me|mijn)\b|\bgeen\s+"
        r"(?:e-?mails|berichten|mails)\s+meer\b|\bstop\s+met\s+(?:mailen|e-?mailen|sturen)"
        r"|\bniet\s+meer\s+(?:mailen|benaderen|contacteren|e-?mailen)",
        "pt": r"\bdescadastr|\bcancelar\s+(?:a\s+)?(?:minha\s+)?inscri[çc][ãa]o|\bremova-me\b"
        r"|\bremover\s+(?:o\s+)?meu\s+(?:e-?mail|contato|contacto)|\bparem?\s+de\s+(?:me\s+)?"
        r"(?:enviar|mandar|contactar|contatar)|\bn[ãa]o\s+(?:me\s+)?(?:envi(?:e|em)|mand(?:e|em)"
        r"|contat(?:e|em))\s+mais|\b(?:tirar|retirar|remover)(?:-me)?\s+da\s+(?:sua\s+)?lista",
        "it": r"\bdisiscri|\bcancellami\b|\bcancellarmi\s+dalla|\brimuovimi\b"
        r"|\brimuovete(?:mi)?\b|\brimuovere\s+il\s+mio|\bnon\s+(?:inviatemi|scrivetemi|contattatemi|mandatemi)\s+più|\bsmett(?:ete|a)"
        r"(?:la)?\s+di\s+(?:inviar|scriver|contattar|mandar)|\btoglietemi\b|\bcancellatemi\b",
    }
)
# A reply that is only a stop word.
_STOP_WORD = re.compile(
    r"^\W*(?:stop|unsubscribe|remove|remove\s+me|abmelden|stopp|d[ée]sabonner|baja|afmelden"
    r"|descadastrar|cancellami|parar)\W*$",
    _I,
)

# Subjects of non-delivery reports, in the words MTAs and Exchange use per language.
BOUNCE_SUBJECT = re.compile(
    r"^\s*(?:undeliver(?:able|ed)|undelivered\s+mail|mail\s+delivery\s+(?:failed|failure|system)"
    r"|delivery\s+(?:status\s+notification|failure|failed|has\s+failed)"
    r"|failure\s+notice|returned\s+mail|non-?delivery|nondeliverable|mail\s+system\s+error"
    r"|message\s+(?:not\s+delivered|delivery\s+failed)|could\s+not\s+send\s+message"
    r"|warning:\s*(?:could\s+not\s+send|message\s+\S+\s+delayed)|delayed\s+mail"
    r"|unzustellbar|nicht\s+zustellbar|non\s+remis|non\s+distribu|no\s+se\s+puede\s+entregar"
    r"|no\s+entregado|onbestelbaar|n[ãa]o\s+(?:[ée]\s+poss[íi]vel\s+entregar|entregue)"
    r"|non\s+recapitabile|impossibile\s+recapitare)",
    _I,
)
# Local parts of the senders of reports and system mail.
DAEMON_LOCAL = re.compile(
    r"^(?:mailer-?daemon|mail-?daemon|postmaster|mdaemon|microsoftexchange[0-9a-f]*"
    r"|mail-?delivery(?:-?system|-?subsystem)?|bounces?|double-?bounce|smtp-?gateway)$",
    _I,
)
NOREPLY_LOCAL = re.compile(
    r"^(?:no-?reply|do-?not-?reply|donotreply|notifications?)(?:[+._-]|$)", _I
)


def out_of_office(low: str) -> str | None:
    """The language whose out-of-office wording lower-cased ``low`` uses, or None."""
    match = find_word(_OOO, low)
    return match.lastgroup if match is not None else None


def automatic(low: str) -> bool:
    """Whether lower-cased ``low`` says a machine wrote it."""
    return find_word(AUTOMATIC, low) is not None


def redirect(low: str) -> bool:
    """Whether lower-cased ``low`` points elsewhere the way an out-of-office text does."""
    return find_word(REDIRECT, low) is not None


def unsubscribe(low: str) -> str | None:
    """The language in which lower-cased ``low`` asks to be removed, or None.

    A bare stop word ("STOP", "unsubscribe") counts as English.
    """
    match = find_word(_UNSUBSCRIBE, low)
    if match is not None:
        return match.lastgroup
    return "en" if _STOP_WORD.match(low) else None
