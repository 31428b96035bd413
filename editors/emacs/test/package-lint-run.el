;;; package-lint-run.el --- package-lint over nib's Emacs packages, offline -*- lexical-binding: t; -*-

;; emacs --batch -Q -L <package-lint> -L <dep>... -l package-lint-run.el FILE...
;;
;; package-lint checks that every package a file requires is installable
;; from package.el's archives. Offline there are none, so the packages on
;; `load-path' that have a -pkg.el (Debian's ELPA packages: lsp-mode and
;; its dependencies) are entered as the archive's contents, at their real
;; versions. Every finding fails the run but one stale warning of
;; package-lint 0.16 (Debian 12's), which calls every Emacs from 28 on
;; unreleased.

;;; Code:

(require 'package)
(require 'package-lint)

(defun nib-lint-offline-archive ()
  "The -pkg.el packages on `load-path', as package descriptions."
  (let (contents)
    (dolist (dir load-path contents)
      (dolist (pkg-file (file-expand-wildcards (expand-file-name "*-pkg.el" dir)))
        (with-temp-buffer
          (insert-file-contents pkg-file)
          (let* ((form (read (current-buffer)))
                 (desc (apply #'package-desc-from-define (cdr form))))
            (push (list (package-desc-name desc) desc) contents)))))))

;; Every finding is printed; errors fail the run.
(package-initialize)
(setq package-archive-contents (append (nib-lint-offline-archive) package-archive-contents))
(let ((errors 0))
  (dolist (file command-line-args-left)
    (with-temp-buffer
      (insert-file-contents file t)
      (emacs-lisp-mode)
      (pcase-dolist (`(,line ,col ,type ,message) (package-lint-buffer))
        ;; package-lint 0.16 (Debian 12's) calls every Emacs from 28 on
        ;; unreleased; that warning alone is not counted.
        (unless (and (eq type 'warning)
                     (string-match-p "uninstallable in all released Emacs versions" message))
          (setq errors (1+ errors)))
        (message "%s:%d:%d: %s: %s" (file-name-nondirectory file) line col type message))))
  (message "package-lint: %d finding%s in %d file%s" errors (if (= errors 1) "" "s")
           (length command-line-args-left) (if (= (length command-line-args-left) 1) "" "s"))
  (kill-emacs (if (> errors 0) 1 0)))
;;; package-lint-run.el ends here
