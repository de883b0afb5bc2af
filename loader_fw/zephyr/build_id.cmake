# cmake -DOUT=header -DPREFIX=board "-DFILES=a|b|c" -P build_id.cmake
# Writes OUT as "#define QL_BUILD_ID 0x<8 hex digits>u": the first 32 bits of the SHA-256 of
# PREFIX followed by the text of each file in FILES ('|'-separated, in that order). Run at
# build time by the custom command in CMakeLists.txt whenever one of those files changes.
# OUT is rewritten only when the id changes (else just touched, so the rule is satisfied and
# entry.c is not recompiled for nothing).
string(REPLACE "|" ";" _files "${FILES}")
set(_text "${PREFIX}")
foreach(_f IN LISTS _files)
  file(READ "${_f}" _content)
  string(APPEND _text "${_content}")
endforeach()
string(SHA256 _hash "${_text}")
string(SUBSTRING "${_hash}" 0 8 _id)
set(_new "#define QL_BUILD_ID 0x${_id}u\n")
set(_old "")
if(EXISTS "${OUT}")
  file(READ "${OUT}" _old)
endif()
if(_old STREQUAL _new)
  file(TOUCH_NOCREATE "${OUT}")
else()
  file(WRITE "${OUT}" "${_new}")
endif()
