# Install rules besides the binary (the top CMakeLists installs it as
# sbin/tsguard). Included from the top CMakeLists.txt:
#
#   include(cmake/install.cmake)
#
#   man pages            share/man/man8/tsguard.8, share/man/man5/tsguard-rules.5
#   systemd unit         lib/systemd/system/tsguard.service (paths of this build)
#   rule pack            <sysconfdir>/tsguard/rules.d/*.yaml (0644, dirs 0755);
#                        /etc/tsguard/rules.d with --prefix /usr (GNUInstallDirs)
#   documentation        share/doc/tsguard/*.md, examples/ (dist/fleet, dist/kubernetes)
#
# Try it: cmake --install BUILD --prefix /tmp/x; DESTDIR=/tmp/y cmake --install BUILD
include_guard(GLOBAL)
include(GNUInstallDirs)

set(TSG_DIST_DIR ${PROJECT_SOURCE_DIR}/dist)
set(TSG_SYSTEMD_UNITDIR "lib/systemd/system" CACHE STRING
    "systemd system unit directory (relative to the prefix, or absolute)")

# tsguard refuses rule directories writable by group or others when it runs as
# root, so never let the installer's umask decide.
set(CMAKE_INSTALL_DEFAULT_DIRECTORY_PERMISSIONS
    OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
set(TSG_FILE_PERMS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

# ---- man pages -------------------------------------------------------------
install(FILES ${TSG_DIST_DIR}/tsguard.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8
        PERMISSIONS ${TSG_FILE_PERMS})
install(FILES ${TSG_DIST_DIR}/tsguard-rules.5 DESTINATION ${CMAKE_INSTALL_MANDIR}/man5
        PERMISSIONS ${TSG_FILE_PERMS})

# ---- systemd unit: the shipped file names /usr/sbin, /etc and /usr/share;
# rewrite them to where this build installs ---------------------------------
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${TSG_DIST_DIR}/tsguard.service)
file(READ ${TSG_DIST_DIR}/tsguard.service _tsg_unit)
string(REPLACE "/usr/sbin/tsguard" "${CMAKE_INSTALL_FULL_SBINDIR}/tsguard" _tsg_unit "${_tsg_unit}")
string(REPLACE "/etc/tsguard/rules.d" "${CMAKE_INSTALL_FULL_SYSCONFDIR}/tsguard/rules.d"
       _tsg_unit "${_tsg_unit}")
string(REPLACE "/usr/share/doc/tsguard" "${CMAKE_INSTALL_FULL_DOCDIR}" _tsg_unit "${_tsg_unit}")
file(GENERATE OUTPUT ${CMAKE_BINARY_DIR}/dist/tsguard.service CONTENT "${_tsg_unit}")
install(FILES ${CMAKE_BINARY_DIR}/dist/tsguard.service DESTINATION ${TSG_SYSTEMD_UNITDIR}
        PERMISSIONS ${TSG_FILE_PERMS})

# ---- documentation and examples ---------------------------------------------
file(GLOB _tsg_docs CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/docs/*.md)
install(FILES ${_tsg_docs} DESTINATION ${CMAKE_INSTALL_DOCDIR} PERMISSIONS ${TSG_FILE_PERMS})
install(DIRECTORY ${TSG_DIST_DIR}/fleet ${TSG_DIST_DIR}/kubernetes
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples FILE_PERMISSIONS ${TSG_FILE_PERMS})

# ---- the rule pack -------------------------------------------------------------
# An absolute destination under the full sysconfdir (/etc for --prefix /usr),
# with two refinements done at install time:
#  - `cmake --install --prefix P` (a prefix other than the configured one)
#    relocates it to P/etc/tsguard/rules.d instead of writing outside P;
#  - a rule file that exists and differs (an administrator edited it) is kept;
#    the new version lands beside it as NAME.yaml.dist, which tsguard does not
#    load (only *.yaml and *.yml are), and a message says so.
# DESTDIR is applied by file(INSTALL) as for every other rule.
file(GLOB TSG_RULE_PACK CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/rules/*.yaml)
install(CODE "
  set(_tsg_rules_dir \"${CMAKE_INSTALL_FULL_SYSCONFDIR}/tsguard/rules.d\")
  if(NOT \"\${CMAKE_INSTALL_PREFIX}\" STREQUAL \"${CMAKE_INSTALL_PREFIX}\")
    set(_tsg_rules_dir \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_SYSCONFDIR}/tsguard/rules.d\")
  endif()
  file(INSTALL DESTINATION \"\${_tsg_rules_dir}\" TYPE DIRECTORY FILES
       DIR_PERMISSIONS ${CMAKE_INSTALL_DEFAULT_DIRECTORY_PERMISSIONS})
  foreach(_f ${TSG_RULE_PACK})
    get_filename_component(_n \"\${_f}\" NAME)
    set(_dst \"\$ENV{DESTDIR}\${_tsg_rules_dir}/\${_n}\")
    if(EXISTS \"\${_dst}\")
      file(SHA256 \"\${_f}\" _a)
      file(SHA256 \"\${_dst}\" _b)
      if(NOT _a STREQUAL _b)
        message(STATUS \"Keeping modified: \${_dst}; new version: \${_dst}.dist\")
        file(INSTALL \"\${_f}\" DESTINATION \"\${_tsg_rules_dir}\" RENAME \"\${_n}.dist\"
             PERMISSIONS ${TSG_FILE_PERMS})
        continue()
      endif()
    endif()
    file(INSTALL \"\${_f}\" DESTINATION \"\${_tsg_rules_dir}\" PERMISSIONS ${TSG_FILE_PERMS})
  endforeach()
")
