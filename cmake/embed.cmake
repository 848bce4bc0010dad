# mlplat_embed_data(TARGET <lib> ROOT <dir> DIRS <subdir>...)
# Turns every file under ROOT/<subdir> into bytes inside a generated .cpp file, keyed by its path
# relative to ROOT (e.g. "profiles/onprem/starter.yaml"). The data stays reviewable as files in the
# repository while the binary is self-contained; installer/assets/assets.hpp reads it back.
function(mlplat_embed_data)
  cmake_parse_arguments(ARG "" "TARGET;ROOT" "DIRS" ${ARGN})
  set(files)
  foreach(dir IN LISTS ARG_DIRS)
    file(GLOB_RECURSE found CONFIGURE_DEPENDS LIST_DIRECTORIES false "${ARG_ROOT}/${dir}/*")
    list(APPEND files ${found})
  endforeach()
  list(FILTER files EXCLUDE REGEX "/(\\.|#)[^/]*$|~$")
  list(SORT files)
  set(out "${CMAKE_CURRENT_BINARY_DIR}/embedded_data.cpp")
  add_custom_command(
    OUTPUT "${out}"
    COMMAND ${CMAKE_COMMAND} -DROOT=${ARG_ROOT} -DOUT=${out} "-DFILES=${files}"
            -P "${PROJECT_SOURCE_DIR}/cmake/embed_run.cmake"
    DEPENDS ${files} "${PROJECT_SOURCE_DIR}/cmake/embed_run.cmake"
    COMMENT "Embedding data files (${ARG_DIRS})"
    VERBATIM)
  target_sources(${ARG_TARGET} PRIVATE "${out}")
endfunction()
